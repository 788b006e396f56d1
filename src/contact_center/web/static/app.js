/* Contact Center operator UI.
 *
 * The server renders every piece of HTML (escaped by its templates); this script only fetches
 * those fragments, puts them in place, and sends changes to the inbox API with the session's
 * CSRF token. Text that did not come from a template is inserted with textContent, never as HTML.
 * Live updates arrive over one EventSource (/events), which reconnects by itself and resumes
 * after the last event id it saw.
 */
(function () {
  "use strict";

  var STRINGS = JSON.parse(document.getElementById("ui-strings").textContent);
  var CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function fmt(key, values) {
    var text = STRINGS[key] || key;
    return text.replace(/\{(\w+)\}/g, function (match, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : match;
    });
  }

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  /* ---------------------------------------------------------------- toasts */

  function toast(text, kind, milliseconds) {
    var box = $("#toasts");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "toast " + (kind || "info");
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () {
      item.classList.add("leaving");
      setTimeout(function () { item.remove(); }, 300);
    }, milliseconds || 5000);
  }

  /* ---------------------------------------------------------------- HTTP */

  function ApiError(status, error) {
    this.status = status;
    this.error = error || {};
    this.message = this.error.message || ("HTTP " + status);
  }

  function request(method, url, body, accept) {
    var headers = {"Accept": accept || "application/json", "X-Requested-With": "fetch"};
    if (method !== "GET") { headers["X-CSRF-Token"] = CSRF; }
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 204) { return null; }
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          throw new ApiError(response.status, data.error);
        });
      }
      return accept === "text/html" ? response.text() : response.json();
    });
  }

  function api(method, url, body) { return request(method, url, body); }
  function fetchHtml(url) { return request("GET", url, undefined, "text/html"); }

  function nodesFrom(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();  // our server's escaped template output only
    return holder.content;
  }

  function explain(error) {
    if (!(error instanceof ApiError)) { return fmt("network"); }
    var detail = error.error || {};
    if (detail.code === "stale" && detail.current) {
      var current = detail.current;
      if (current.status === "assigned" && String(current.assignee_id) === state.userId) { return fmt("stale_yours"); }
      if (current.status === "assigned") { return fmt("stale_assigned", {name: current.assignee_name}); }
      if (current.status === "done") { return fmt("stale_done"); }
      return fmt("stale_new");
    }
    if (detail.code === "csrf_failed") { return fmt("csrf"); }
    if (detail.code === "opted_out") { return fmt("opted_out", {channel: channelLabel(detail.channel_kind)}); }
    if (error.status === 403) { return fmt("forbidden", {message: error.message}); }
    return fmt("error", {message: error.message});
  }

  function fail(error) { toast(explain(error), "error", 7000); }

  /* ---------------------------------------------------------------- SMS segments
   * The same count as contact_center/messaging/segments.py: GSM-7 (160, or 153 per part) unless a
   * character is outside the GSM 03.38 default alphabet, then UCS-2 (70, or 67 per part);
   * extension characters and characters outside the BMP take two units and are never split. */

  var GSM7_BASIC = new Set(Array.from(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"));
  var GSM7_EXTENSION = new Set(Array.from("\f^{}\\[~]|€"));

  function countSegments(text) {
    var chars = Array.from(text);
    var gsm = chars.every(function (c) { return GSM7_BASIC.has(c) || GSM7_EXTENSION.has(c); });
    var encoding = gsm ? "GSM-7" : "UCS-2";
    var widths = chars.map(function (c) {
      return gsm ? (GSM7_EXTENSION.has(c) ? 2 : 1) : (c.codePointAt(0) > 0xFFFF ? 2 : 1);
    });
    var units = widths.reduce(function (a, b) { return a + b; }, 0);
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    if (units <= single) {
      return {encoding: encoding, characters: units, segments: units ? 1 : 0, perSegment: single, remaining: single - units};
    }
    var segments = 1, used = 0;
    widths.forEach(function (width) {
      if (used + width > multi) { segments += 1; used = 0; }
      used += width;
    });
    return {encoding: encoding, characters: units, segments: segments, perSegment: multi, remaining: multi - used};
  }

  window.ContactCenter = {countSegments: countSegments};

  /* ---------------------------------------------------------------- page state */

  var inbox = $("#inbox");
  var state = {
    userId: inbox ? inbox.dataset.userId : "",
    openId: inbox && inbox.dataset.openId ? Number(inbox.dataset.openId) : null,
    query: inbox ? inbox.dataset.query : "",
    scope: new Set(),
    contactId: null,
    lastEventId: inbox ? inbox.dataset.since : ""
  };

  function readScope() {
    var timeline = $("#timeline");
    state.scope = new Set((timeline && timeline.dataset.scope ? timeline.dataset.scope.split(",") : []).map(Number));
    var header = $("#conv-header");
    state.contactId = header && header.dataset.contactId ? Number(header.dataset.contactId) : null;
  }

  /* ---------------------------------------------------------------- the list */

  function listQuery(extra) {
    var params = new URLSearchParams(state.query);
    if (state.openId) { params.set("open", state.openId); }
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    return params.toString();
  }

  function activityOf(node) { return Date.parse(node.dataset.activity) || 0; }

  function placeRow(node) {
    var list = $("#conversation-list");
    var rows = $all(".row", list);
    var activity = activityOf(node), id = Number(node.dataset.id);
    var before = null;
    for (var i = 0; i < rows.length; i++) {
      var other = activityOf(rows[i]);
      if (other < activity || (other === activity && Number(rows[i].dataset.id) < id)) { before = rows[i]; break; }
    }
    if (!before && list.dataset.next) { return false; }  // older than what is loaded: it is on a later page
    list.insertBefore(node, before || $("#list-empty"));
    return true;
  }

  function showTotal(total) {
    var meta = $("#list-meta");
    if (!meta || total === undefined) { return; }
    meta.dataset.total = total;
    meta.textContent = total === 1 ? fmt("list_count_one") : fmt("list_count", {count: total.toLocaleString(document.documentElement.lang)});
  }

  function refreshRow(conversationId) {
    return fetchHtml("/inbox/fragments/row/" + conversationId + "?" + listQuery()).then(function (html) {
      var existing = document.getElementById("row-" + conversationId);
      if (html === null) {
        if (existing) { existing.remove(); }
      } else {
        var node = nodesFrom(html).firstElementChild;
        if (existing) { existing.remove(); }
        placeRow(node);
      }
      var empty = $("#list-empty");
      if (empty) { empty.hidden = $all("#conversation-list .row").length > 0; }
      if (notifyFor.has(conversationId)) {
        notifyFor.delete(conversationId);
        var row = document.getElementById("row-" + conversationId);
        if (row) { desktopNotify(row); }
      }
    }).catch(function () { /* the next event or a resync brings it back */ });
  }

  function loadMore() {
    var list = $("#conversation-list"), button = $("#load-more");
    if (!list.dataset.next) { return; }
    button.disabled = true;
    fetchHtml("/inbox/fragments/list?" + listQuery({before: list.dataset.next})).then(function (html) {
      var wrapper = nodesFrom(html).firstElementChild;
      $all(".row", wrapper).forEach(function (row) {
        if (!document.getElementById(row.id)) { list.insertBefore(row, $("#list-empty")); }
      });
      list.dataset.next = wrapper.dataset.next || "";
      button.hidden = !list.dataset.next;
    }).catch(fail).then(function () { button.disabled = false; });
  }

  function reloadList() {
    var list = $("#conversation-list");
    if (!list) { return Promise.resolve(); }
    return fetchHtml("/inbox/fragments/list?" + listQuery()).then(function (html) {
      var wrapper = nodesFrom(html).firstElementChild;
      $all(".row", list).forEach(function (row) { row.remove(); });
      $all(".row", wrapper).forEach(function (row) { list.insertBefore(row, $("#list-empty")); });
      list.dataset.next = wrapper.dataset.next || "";
      $("#load-more").hidden = !list.dataset.next;
      $("#list-empty").hidden = $all(".row", list).length > 0;
      showTotal(Number(wrapper.dataset.total));
    });
  }

  /* ---------------------------------------------------------------- the open conversation */

  function entries() { return $("#entries"); }

  function nearBottom() {
    var timeline = $("#timeline");
    return !timeline || timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
  }

  function scrollToEnd() {
    var timeline = $("#timeline");
    if (timeline) { timeline.scrollTop = timeline.scrollHeight; }
  }

  function placeEntry(node) {
    var list = entries();
    var existing = node.id ? document.getElementById(node.id) : null;
    if (existing) { existing.replaceWith(node); return; }
    var stick = nearBottom();
    var at = Date.parse(node.dataset.at) || 0;
    var items = $all(".entry", list), before = null;
    for (var i = items.length - 1; i >= 0; i--) {
      if ((Date.parse(items[i].dataset.at) || 0) <= at) { before = items[i + 1] || null; break; }
      if (i === 0) { before = items[0]; }
    }
    list.insertBefore(node, before);
    $("#timeline-empty").hidden = true;
    if (stick || node.classList.contains("out")) { scrollToEnd(); }
  }

  function refreshMessage(messageId) {
    if (!state.openId) { return Promise.resolve(); }
    return fetchHtml("/inbox/" + state.openId + "/fragments/message/" + messageId).then(function (html) {
      if (html) { placeEntry(nodesFrom(html).firstElementChild); }
    }).catch(function () {});
  }

  function refreshEvent(eventId) {
    return fetchHtml("/inbox/" + state.openId + "/fragments/event/" + eventId).then(function (html) {
      if (html) { placeEntry(nodesFrom(html).firstElementChild); }
    }).catch(function () {});
  }

  function refreshHeader(quiet) {
    if (!state.openId) { return Promise.resolve(); }
    return fetchHtml("/inbox/" + state.openId + "/fragments/header").then(function (html) {
      $("#conv-header").replaceWith(nodesFrom(html).firstElementChild);
      readScope();
      updateComposer();
    }).catch(function (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) { conversationGone(quiet); }
    });
  }

  function conversationGone(quiet) {
    if (!quiet) { toast(fmt("conversation_gone"), "error", 8000); }
    $all("#conv-header button, #conv-header select, #composer textarea, #composer button, #composer select")
      .forEach(function (control) { control.disabled = true; });
  }

  function refreshTimeline() {
    if (!state.openId) { return Promise.resolve(); }
    return fetchHtml("/inbox/" + state.openId + "/fragments/timeline").then(function (html) {
      var wrapper = nodesFrom(html).firstElementChild;
      var list = entries();
      while (list.firstChild) { list.removeChild(list.firstChild); }
      $all(".entry", wrapper).forEach(function (node) { list.appendChild(node); });
      $("#timeline").dataset.scope = wrapper.dataset.scope;
      var older = $("#load-older");
      older.dataset.before = wrapper.dataset.older;
      older.hidden = !wrapper.dataset.older;
      $("#timeline-empty").hidden = list.children.length > 0;
      readScope();
      scrollToEnd();
    }).catch(function () {});
  }

  function loadOlder() {
    var button = $("#load-older");
    var height = $("#timeline").scrollHeight;
    button.disabled = true;
    fetchHtml("/inbox/" + state.openId + "/fragments/timeline?before=" + button.dataset.before).then(function (html) {
      var wrapper = nodesFrom(html).firstElementChild;
      var list = entries();
      $all(".entry", wrapper).reverse().forEach(function (node) {
        if (!node.id || !document.getElementById(node.id)) { list.insertBefore(node, list.firstChild); }
      });
      button.dataset.before = wrapper.dataset.older;
      button.hidden = !wrapper.dataset.older;
      var timeline = $("#timeline");
      timeline.scrollTop = timeline.scrollHeight - height;
    }).catch(fail).then(function () { button.disabled = false; });
  }

  // A live event can re-render the panel while the operator is editing the contact: keep the
  // edit form open and what they typed.
  function refreshContact() {
    if (!state.openId) { return Promise.resolve(); }
    return fetchHtml("/inbox/" + state.openId + "/fragments/contact").then(function (html) {
      var old = $("#contact-panel");
      var fresh = nodesFrom(html).firstElementChild;
      carryEdits(old, fresh);
      old.replaceWith(fresh);
      updateComposer();  // the opt-out flags may have changed
    }).catch(function () {});
  }

  function carryEdits(old, fresh) {
    var was = old.querySelector("details.contact-edit");
    var now = fresh.querySelector("details.contact-edit");
    if (was && now && was.open) { now.open = true; }
    $all("form input, form textarea, form select", old).forEach(function (field) {
      var form = field.form && field.form.dataset.form;
      var twin = form && field.name && fresh.querySelector("[data-form=" + form + "] [name=\"" + field.name + "\"]");  // quoted: "fields.x" has a dot
      if (!twin) { return; }
      if (field.type === "checkbox") {
        if (field.checked !== field.defaultChecked) { twin.checked = field.checked; }
      } else if (field.tagName === "SELECT") {  // a choice or yes/no contact field
        var chosen = field.options[field.selectedIndex];
        if (chosen && !chosen.defaultSelected) { twin.value = field.value; }
      } else if (field.value !== field.defaultValue) {
        twin.value = field.value;
      }
    });
  }

  var readTimer = null;
  function markReadSoon() {
    if (!state.openId || document.hidden) { return; }
    clearTimeout(readTimer);
    readTimer = setTimeout(function () {
      var row = document.getElementById("row-" + state.openId);
      if (row && !row.querySelector("[data-role=unread]")) { return; }
      api("POST", "/api/conversations/" + state.openId + "/read").catch(function () {});
    }, 400);
  }

  /* ---------------------------------------------------------------- actions */

  var DONE_TOAST = {take: "taken", release: "released", close: "closed", reopen: "reopened", transfer: "transferred"};

  function act(action, button) {
    var body;
    if (action === "transfer") {
      var target = $("[data-role=transfer-target]");
      if (!target || !target.value) { target && target.focus(); return; }
      body = {assignee_id: Number(target.value)};
    }
    button.disabled = true;
    api("POST", "/api/conversations/" + state.openId + "/" + action, body).then(function (result) {
      toast(fmt(DONE_TOAST[action]), "ok");
      if (result === null) { conversationGone(true); return; }  // passed on: no longer ours to see
      return Promise.all([refreshHeader(), refreshRow(state.openId)]);
    }).catch(function (error) {
      fail(error);  // says why; the refresh below only brings the page up to date
      return Promise.all([refreshHeader(true), refreshRow(state.openId)]);
    }).then(function () { button.disabled = false; });
  }

  /* ---------------------------------------------------------------- composer */

  function updateCounter() {
    var body = $("#composer-body"), counter = $("#segment-counter"), channel = $("#composer-channel");
    if (!body || !counter) { return; }
    var option = channel && channel.selectedOptions[0];
    if (option && option.dataset.kind === "whatsapp") { counter.textContent = ""; return; }
    var info = countSegments(body.value);
    counter.textContent = fmt("segments", {chars: info.characters, segments: info.segments, encoding: info.encoding}) +
      (info.characters ? " · " + fmt("segments_left", {left: info.remaining}) : "");
    counter.dataset.segments = info.segments;
    counter.dataset.encoding = info.encoding;
    counter.classList.toggle("multi", info.segments > 1);
  }

  function updateComposer() {
    var header = $("#conv-header"), composer = $("#composer");
    if (!header || !composer) { return; }
    var writable = header.dataset.write === "1";
    $all("textarea, button, select", composer).forEach(function (control) { control.disabled = !writable; });
    var note = $("#composer-readonly");
    note.hidden = writable;
    note.textContent = writable ? "" : note.dataset.template.replace("{name}", header.dataset.assigneeName);
    var hint = $("#composer-hint");
    var status = header.dataset.status;
    hint.textContent = status === "new" ? hint.dataset.new : status === "done" ? hint.dataset.done : "";
    updateWindow();
    updateOptOut();
  }

  /* A contact who opted out of the chosen channel's kind: said before writing, and nothing goes
   * (the server refuses it too). The contact panel carries the flags and is redrawn on changes. */

  function channelLabel(kind) { return kind === "whatsapp" ? "WhatsApp" : "SMS"; }

  function optedOutKind() {
    var channel = $("#composer-channel"), option = channel && channel.selectedOptions[0];
    var panel = $("#contact-panel");
    if (!option || !panel) { return null; }
    var kind = option.dataset.kind;
    return panel.dataset[kind === "whatsapp" ? "optOutWhatsapp" : "optOutSms"] === "1" ? kind : null;
  }

  function updateOptOut() {
    var notice = $("#composer-opted-out");
    if (!notice) { return; }
    var kind = optedOutKind();
    notice.hidden = !kind;
    if (!kind) { notice.textContent = ""; return; }
    var name = $("#contact-panel [data-role=contact-name]");
    notice.textContent = notice.dataset.template.replace("{name}", name ? name.textContent.trim() : "")
      .replace("{channel}", channelLabel(kind));
    $all("#composer-send, #composer-file, [data-role=send-template]").forEach(function (control) {
      control.disabled = true;
    });
  }

  function composerError(text) {
    var place = $("#composer-error");
    if (!place) { return; }
    place.textContent = text || "";
    place.hidden = !text;
  }

  /* WhatsApp allows free text until 24 h after the customer's last message (the header carries
   * when); after that only an approved template goes out, so the composer says which applies. */

  function windowLeft(closesAt) {
    var minutes = Math.floor((closesAt - Date.now()) / 60000);
    if (minutes < 1) { return fmt("under_a_minute"); }
    if (minutes < 60) { return fmt("minutes", {minutes: minutes}); }
    return fmt("hours_minutes", {hours: Math.floor(minutes / 60), minutes: minutes % 60});
  }

  var windowTimer = null;
  function updateWindow() {
    var header = $("#conv-header"), line = $("#window-line");
    clearTimeout(windowTimer);
    if (!header || !line) { return; }
    var channel = $("#composer-channel"), option = channel && channel.selectedOptions[0];
    // Another channel (an SMS one) has no window: only the conversation's own WhatsApp number does.
    var own = !option || option.value === header.dataset.channelId;
    var closesAt = Date.parse(header.dataset.windowClosesAt || "") || 0;
    var closed = own && closesAt <= Date.now();
    line.hidden = !own;
    line.classList.toggle("closed", closed);
    line.dataset.state = closed ? "closed" : "open";
    line.textContent = closed ? fmt("window_closed") : fmt("window_open", {left: windowLeft(closesAt)});
    var writable = header.dataset.write === "1";
    $("#composer-body").disabled = !writable || closed;
    $("#composer-send").disabled = !writable || closed;
    var file = $("#composer-file");
    if (file) { file.disabled = !writable || closed; }  // a file is free-form too: the window applies
    var templates = $("#wa-templates");
    if (templates && closed && !templates.dataset.touched) { templates.open = true; }
    if (own && !closed) {
      // Again at the next minute, and exactly when it closes.
      windowTimer = setTimeout(updateWindow, Math.min(60000 - (Date.now() % 60000) + 50, closesAt - Date.now() + 50));
    }
  }

  var replyTo = null;
  function setReply(messageId, text) {
    replyTo = messageId;
    var bar = $("#reply-bar");
    if (!bar) { return; }
    bar.hidden = !messageId;
    $("#reply-text").textContent = text || "";
    if (messageId) { $("#composer-body").focus(); }
  }

  function showTemplate(templateId) {
    $all(".wa-template").forEach(function (panel) { panel.hidden = panel.dataset.templateId !== templateId; });
  }

  function templateParameters(panel) {
    var named = panel.dataset.named === "1";
    var parameters = {}, missing = null;
    $all("input[data-path]", panel).forEach(function (input) {
      var value = input.value.trim(), part = input.dataset.part, path = input.dataset.path;
      if (!value && input.dataset.required && !missing) { missing = input; }
      if (part === "header_media") {
        if (value) { parameters.header_media = {type: input.dataset.media, link: value}; }
      } else if (part === "buttons") {
        if (value) { (parameters.buttons = parameters.buttons || {})[path.match(/\[(\d+)\]$/)[1]] = value; }
      } else if (named) {
        (parameters[part] = parameters[part] || {})[path.slice(path.lastIndexOf(".") + 1)] = value;
      } else {
        (parameters[part] = parameters[part] || []).push(value);
      }
    });
    return {parameters: parameters, missing: missing};
  }

  function clearTemplateErrors(panel) {
    $all("[data-role=field-error], [data-role=template-error]", panel).forEach(function (node) {
      node.hidden = true; node.textContent = "";
    });
    $all("input.invalid", panel).forEach(function (input) { input.classList.remove("invalid"); });
  }

  function showFieldError(panel, input, message) {
    var place = input ? input.parentNode.querySelector("[data-role=field-error]") : $("[data-role=template-error]", panel);
    place.textContent = message;
    place.hidden = false;
    if (input) { input.classList.add("invalid"); input.focus(); }
  }

  function fieldNamed(panel, field) {
    // The 422 names the parameter (parameters.body[1], parameters.header_media.link…): the field
    // whose path it is, or starts with.
    var found = null;
    $all("input[data-path]", panel).forEach(function (input) {
      var path = input.dataset.path;
      if (field === path || field.indexOf(path + ".") === 0) { found = input; }
    });
    return found;
  }

  function sendTemplate(panel, button) {
    clearTemplateErrors(panel);
    var built = templateParameters(panel);
    if (built.missing) { showFieldError(panel, built.missing, fmt("field_required")); return; }
    button.disabled = true;
    api("POST", "/api/conversations/" + state.openId + "/template",
        {template_id: Number(panel.dataset.templateId), parameters: built.parameters}).then(function (message) {
      $all("input[data-path]", panel).forEach(function (input) { input.value = ""; });
      toast(fmt("template_sent"), "ok");
      state.scope.add(message.conversation_id);
      return Promise.all([refreshMessage(message.id), refreshHeader(), refreshRow(message.conversation_id)]);
    }).catch(function (error) {
      if (error instanceof ApiError && error.status === 422) {
        showFieldError(panel, error.error.field ? fieldNamed(panel, error.error.field) : null, error.message);
      } else { fail(error); }
    }).then(function () { button.disabled = false; });
  }

  function smsFallback(button) {
    var original = Number(button.dataset.smsFallback);
    button.disabled = true;
    api("POST", "/api/messages/" + original + "/sms-fallback").then(function (message) {
      toast(fmt("fallback_sent"), "ok");
      if (message && message.conversation_id) { state.scope.add(message.conversation_id); }
      return Promise.all([refreshMessage(original), message ? refreshMessage(message.id) : null,
                          refreshRow(state.openId)]);
    }).catch(function (error) { fail(error); button.disabled = false; });
  }

  /* A customer's photo or voice note is fetched from WhatsApp after it arrives: until then its
   * bubble says so, and is drawn again until the file is here. */

  var mediaTries = new Map();
  function watchPendingMedia() {
    $all(".entry[data-media-pending]").slice(0, 8).forEach(function (node) {
      var id = Number(node.dataset.messageId), tries = mediaTries.get(id) || 0;
      if (tries >= 60) { return; }
      mediaTries.set(id, tries + 1);
      refreshMessage(id);
    });
  }

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart, end = textarea.selectionEnd, value = textarea.value;
    if (start === undefined || start === null) { textarea.value = value + text; }
    else { textarea.value = value.slice(0, start) + text + value.slice(end); }
    var caret = (start === undefined || start === null ? value.length : start) + text.length;
    textarea.focus();
    textarea.setSelectionRange(caret, caret);
    updateCounter();
  }

  function send(event) {
    event.preventDefault();
    var body = $("#composer-body"), button = $("#composer-send"), channel = $("#composer-channel");
    var text = body.value.trim();
    if (!text) { composerError(fmt("empty_message")); body.focus(); return; }
    var optedOut = optedOutKind();
    if (optedOut) { composerError(fmt("opted_out", {channel: channelLabel(optedOut)})); return; }
    composerError(null);
    button.disabled = true;
    var payload = {body: text, channel_id: channel ? Number(channel.value) : null};
    if (replyTo) { payload.reply_to_message_id = replyTo; }
    api("POST", "/api/conversations/" + state.openId + "/messages", payload).then(function (message) {
      body.value = "";
      setReply(null);
      updateCounter();
      state.scope.add(message.conversation_id);
      return Promise.all([refreshMessage(message.id), refreshHeader(), refreshRow(message.conversation_id)]);
    }).catch(function (error) {
      var detail = (error instanceof ApiError && error.error) || {};
      if (detail.code === "opted_out") {  // the contact opted out meanwhile: say so where the text is
        composerError(explain(error));
        return refreshContact();
      }
      fail(error);
    }).then(function () {
      button.disabled = $("#conv-header").dataset.write !== "1";
      updateWindow();
      updateOptOut();
      body.focus();
    });
  }

  /* A file for the WhatsApp customer: uploaded as a form, the text typed going as its caption. */
  function sendFile(input) {
    var file = input.files && input.files[0];
    if (!file) { return; }
    var body = $("#composer-body"), form = new FormData();
    form.append("file", file, file.name);
    if (body.value.trim()) { form.append("caption", body.value.trim()); }
    input.disabled = true;
    fetch("/api/conversations/" + state.openId + "/attachments", {
      method: "POST", credentials: "same-origin", body: form,
      headers: {"Accept": "application/json", "X-Requested-With": "fetch", "X-CSRF-Token": CSRF}
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { throw new ApiError(response.status, data.error); }
        return data;
      });
    }).then(function (message) {
      body.value = "";
      updateCounter();
      state.scope.add(message.conversation_id);
      return Promise.all([refreshMessage(message.id), refreshHeader(), refreshRow(message.conversation_id)]);
    }).catch(fail).then(function () {
      input.value = "";
      input.disabled = $("#conv-header").dataset.write !== "1";
      updateWindow();
    });
  }

  /* ---------------------------------------------------------------- contact panel */

  var searchTimer = null;

  function searchContacts(input) {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      var results = $("[data-role=contact-results]");
      var q = input.value.trim();
      if (!q) { results.replaceChildren(); return; }
      api("GET", "/inbox/contact-search?q=" + encodeURIComponent(q)).then(function (found) {
        results.replaceChildren();
        if (!found.length) {
          var none = document.createElement("li");
          none.className = "muted";
          none.textContent = results.dataset.empty;
          results.appendChild(none);
        }
        found.forEach(function (contact) {
          var item = document.createElement("li");
          var label = document.createElement("span");
          label.textContent = contact.name + (contact.phone ? " · " + contact.phone : "");
          var button = document.createElement("button");
          button.type = "button";
          button.dataset.linkContact = contact.id;
          button.textContent = "✓";
          button.title = contact.name;
          item.append(label, button);
          results.appendChild(item);
        });
      }).catch(fail);
    }, 250);
  }

  function contactRefreshAll() {
    return Promise.all([refreshContact(), refreshHeader(), refreshTimeline(), refreshRow(state.openId)]);
  }

  function formFields(form, keepEmpty) {
    var data = {};
    $all("input, textarea, select", form).forEach(function (field) {
      if (!field.name) { return; }
      if (field.type === "checkbox") { data[field.name] = field.checked; return; }
      var value = field.value.trim();
      if (field.name.indexOf("fields.") === 0) {  // the business's fields travel as one object
        data.fields = data.fields || {};
        if (value || keepEmpty) { data.fields[field.name.slice(7)] = value || null; }
        return;
      }
      if (value || keepEmpty) { data[field.name] = value || null; }
    });
    return data;
  }

  function submitContact(form) {
    var kind = form.dataset.form;
    var method = kind === "contact-edit" ? "PATCH" : "POST";
    var url = "/api/conversations/" + state.openId + "/contact" + (kind === "contact-create" ? "/new" : "");
    var data = formFields(form, kind === "contact-edit");
    if (kind === "contact-edit" && !data.name) { form.querySelector("[name=name]").focus(); return; }
    api(method, url, data).then(function () {
      toast(fmt(kind === "contact-edit" ? "contact_saved" : "contact_linked"), "ok");
      var editing = $("#contact-panel details.contact-edit");
      if (editing) { editing.open = false; }  // saved: the facts above show the result
      return contactRefreshAll();
    }).catch(fail);
  }

  /* ---------------------------------------------------------------- unread badge, notifications */

  var countsTimer = null;
  function refreshCounts() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(function () {
      api("GET", "/inbox/counts?" + listQuery()).then(function (counts) {
        showTotal(counts.total);
        var badge = $("#unread-badge");
        if (badge) {
          badge.textContent = counts.unread;
          badge.dataset.count = counts.unread;
          badge.hidden = !counts.unread;
        }
        var title = document.title.replace(/^\(\d+\)\s*/, "");
        document.title = (counts.unread ? "(" + counts.unread + ") " : "") + title;
      }).catch(function () {});
    }, 250);
  }

  var notifyFor = new Set();

  function desktopNotify(row) {
    if (!("Notification" in window) || Notification.permission !== "granted") { return; }
    var name = (row.querySelector(".row-title") || {}).textContent || "";
    var preview = (row.querySelector(".preview-text") || {}).textContent || "";
    var note = new Notification(fmt("new_message", {name: name}), {body: preview, tag: "conversation-" + row.dataset.id});
    note.onclick = function () { window.focus(); window.location.href = row.getAttribute("href"); };
  }

  function enableNotifications() {
    if (!("Notification" in window)) { toast(fmt("notifications_denied"), "error"); return; }
    Notification.requestPermission().then(function (permission) {
      toast(fmt(permission === "granted" ? "notifications_on" : "notifications_denied"),
            permission === "granted" ? "ok" : "error");
    });
  }

  function showChannelStatus() {
    api("GET", "/inbox/channel-status").then(function (report) {
      report.forEach(function (channel) { toast(channel.text, channel.ok ? "info" : "error", 8000); });
    }).catch(function () {});
  }

  /* ---------------------------------------------------------------- live events */

  var pending = {rows: new Set(), messages: new Set(), events: new Set(), header: false, contact: false};
  var flushTimer = null;

  function schedule() {
    if (!flushTimer) { flushTimer = setTimeout(flush, 50); }
  }

  function flush() {
    flushTimer = null;
    var rows = Array.from(pending.rows), messages = Array.from(pending.messages), events = Array.from(pending.events);
    var header = pending.header, contact = pending.contact;
    pending = {rows: new Set(), messages: new Set(), events: new Set(), header: false, contact: false};
    rows.forEach(refreshRow);
    messages.forEach(refreshMessage);
    events.forEach(refreshEvent);
    if (header) { refreshHeader(); }
    if (contact) { refreshContact(); refreshTimeline(); }
    refreshCounts();
  }

  function belongsToOpen(data) {
    return state.openId && (state.scope.has(data.conversation_id) ||
                            (state.contactId && data.contact_id === state.contactId));
  }

  function onMessage(data) {
    pending.rows.add(data.conversation_id);
    if (belongsToOpen(data)) {
      pending.messages.add(data.message_id);
      if (data.direction === "in") { markReadSoon(); pending.header = true; }  // the window moved
    }
    if (data.direction === "in" && data.status === "received" &&
        (document.hidden || data.conversation_id !== state.openId)) {
      notifyFor.add(data.conversation_id);
    }
    schedule();
  }

  function onConversation(data) {
    pending.rows.add(data.conversation_id);
    if (state.openId && data.conversation_id === state.openId) {
      if (data.change !== "read") { pending.header = true; }  // the header shows no unread count
      if (data.event_id) { pending.events.add(data.event_id); }
      if (data.change === "contact_linked" || data.change === "contact_updated") { pending.contact = true; }
    }
    schedule();
  }

  function resync() {
    reloadList().catch(function () {});
    if (state.openId) { refreshHeader(); refreshTimeline(); refreshContact(); }
    refreshCounts();
  }

  var source = null, wasDown = false;

  function setLive(mode) {
    var dot = $("#live-status");
    if (dot) { dot.dataset.state = mode; }
    document.documentElement.dataset.live = mode;
  }

  function connect() {
    var url = "/events" + (state.lastEventId ? "?since=" + encodeURIComponent(state.lastEventId) : "");
    source = new EventSource(url);
    setLive("connecting");
    source.onopen = function () {
      setLive("open");
      if (wasDown) { toast(fmt("reconnected"), "ok", 2500); wasDown = false; }
    };
    source.onerror = function () {
      setLive("down");
      wasDown = true;
      if (source.readyState === EventSource.CLOSED) {  // an answer the browser will not retry (e.g. logged out)
        setTimeout(function () {
          api("GET", "/inbox/counts").then(connect).catch(function (error) {
            if (error instanceof ApiError && error.status === 401) { window.location.href = "/login"; }
            else { setTimeout(connect, 3000); }
          });
        }, 2000);
      }
    };
    function listen(kind, handler) {
      source.addEventListener(kind, function (event) {
        state.lastEventId = event.lastEventId || state.lastEventId;
        handler(JSON.parse(event.data || "{}"));
      });
    }
    listen("message.created", onMessage);
    listen("message.status", onMessage);
    listen("message.updated", onMessage);  // e.g. a customer's media fetched
    listen("conversation.updated", onConversation);
    listen("resync", resync);
  }

  /* ---------------------------------------------------------------- wiring */

  /* ---------------------------------------------------------------- campaigns
   * The list and a campaign's page follow the campaigns API by polling (a campaign changes
   * many times a second while it sends; a poll every 2 s is all a person can read). Actions,
   * the preview and creating a campaign call the same API with the session's CSRF token. */

  var FINAL_CAMPAIGN = ["completed", "cancelled", "failed"];
  var ACTIVE_CAMPAIGN = ["building", "running"];

  function lang() { return document.documentElement.lang || "pt-BR"; }
  function number(value) { return Number(value || 0).toLocaleString(lang()); }
  function rate(value) {  // as the server writes it: 12,5%
    return value === null || value === undefined ? "—" : (value * 100).toLocaleString(lang(), {maximumFractionDigits: 1}) + "%";
  }
  function money(value) { return Number(value).toLocaleString(lang(), {style: "currency", currency: "BRL"}); }
  function prettyPhone(e164) {
    var br = /^\+55(\d{2})(\d{4,5})(\d{4})$/.exec(e164 || "");
    return br ? "+55 " + br[1] + " " + br[2] + "-" + br[3] : (e164 || "");
  }

  function counted(key, count) {  // "1 mensagem", "2 mensagens"
    return fmt(count === 1 && STRINGS[key + "_one"] ? key + "_one" : key, {count: number(count)});
  }

  function showCampaignStatus(pill, status) {
    pill.className = pill.className.replace(/\bcst-\w+/, "cst-" + status);
    pill.textContent = fmt("campaign_status_" + status);
  }

  function listItem(text, strongText) {
    var item = document.createElement("li");
    item.textContent = text;
    if (strongText !== undefined) {
      var strong = document.createElement("strong");
      strong.textContent = strongText;
      item.appendChild(strong);
    }
    return item;
  }

  function campaignList(root) {
    function poll() {
      api("GET", "/api/campaigns").then(function (page) {
        var live = false;
        page.items.forEach(function (c) {
          var row = document.getElementById("campaign-row-" + c.id);
          if (!row) { return; }
          live = live || FINAL_CAMPAIGN.indexOf(c.status) < 0;
          showCampaignStatus($("[data-role=campaign-status]", row), c.status);
          var done = c.progress.sent + c.progress.delivered + c.progress.read;
          var share = c.total ? Math.round(100 * done / c.total) : 0;
          var bar = $("progress", row);
          bar.value = share;
          bar.setAttribute("aria-label", fmt("campaign_progress", {share: share}));
          $("[data-role=done]", row).textContent = number(done) + " / " + number(c.total);
          $("[data-role=delivery]", row).textContent = rate(c.delivery_rate);
          $("[data-role=reply]", row).textContent = rate(c.reply_rate);
        });
        if (live) { setTimeout(poll, 5000); }
      }).catch(function () { setTimeout(poll, 10000); });
    }
    if (root.dataset.live === "1") { setTimeout(poll, 2000); }
  }

  function campaignPage(root) {
    var id = root.dataset.campaignId;
    var staff = root.dataset.staff === "1";
    var pageSize = Number(root.dataset.pageSize) || 50;
    // The counts the recipients table was last loaded with; "" so that the first poll reloads it,
    // in case the counts changed between the page and the table.
    var timer = null, lastCounts = "";
    var recipients = {after: null, paged: false};

    function drawBar(progress) {
      var rects = $all("#campaign-bar rect");
      var total = rects.reduce(function (sum, rect) { return sum + (progress[rect.dataset.segment] || 0); }, 0);
      var x = 0;
      rects.forEach(function (rect) {
        var width = total ? 100 * (progress[rect.dataset.segment] || 0) / total : 0;
        rect.setAttribute("x", x.toFixed(3));
        rect.setAttribute("width", width.toFixed(3));
        x += width;
      });
    }

    function drawSkipped(reasons) {
      var box = $("#campaign-skipped"), list = $("[data-role=skip-reasons]", box);
      var keys = Object.keys(reasons || {});
      box.hidden = keys.length === 0;
      list.textContent = "";
      keys.forEach(function (reason) {
        var item = listItem(fmt("skip_" + reason) + ": ", number(reasons[reason]));
        item.dataset.reason = reason;
        list.appendChild(item);
      });
    }

    function draw(c) {
      root.dataset.status = c.status;
      showCampaignStatus($("#campaign-status"), c.status);
      var waiting = $("#campaign-waiting");
      waiting.textContent = c.waiting_reason || "";
      waiting.hidden = !c.waiting_reason;
      var error = $("#campaign-error");
      error.textContent = c.error || "";
      error.hidden = !c.error;
      var cancelled = $("#campaign-cancelled");
      cancelled.textContent = counted("not_sent", c.cancelled);
      cancelled.hidden = c.status !== "cancelled";
      $("#campaign-total").textContent = counted("total", c.total);
      Object.keys(c.progress).forEach(function (state) {
        var cell = $('[data-count="' + state + '"]', root);
        if (cell) { cell.textContent = number(c.progress[state]); }
      });
      $("[data-rate=delivery]", root).textContent = rate(c.delivery_rate);
      $("[data-rate=reply]", root).textContent = rate(c.reply_rate);
      drawBar(c.progress);
      drawSkipped(c.skip_reasons);
      $all("[data-action]", root).forEach(function (button) {
        button.hidden = button.dataset.when.split(",").indexOf(c.status) < 0;
      });
      var confirmBox = $("#cancel-confirm");
      if (confirmBox && FINAL_CAMPAIGN.indexOf(c.status) >= 0) { confirmBox.hidden = true; }
    }

    function schedule(status) {
      clearTimeout(timer);
      if (FINAL_CAMPAIGN.indexOf(status) >= 0) { return; }  // nothing more will change by itself
      timer = setTimeout(poll, ACTIVE_CAMPAIGN.indexOf(status) >= 0 ? 2000 : 5000);
    }

    function poll() {
      api("GET", "/api/campaigns/" + id).then(function (c) {
        draw(c);
        var counts = JSON.stringify(c.progress);
        // The first page of recipients follows the counts; once "Mais" was used, it stays put.
        if (staff && counts !== lastCounts && !recipients.paged) { loadRecipients(false); }
        lastCounts = counts;
        schedule(c.status);
      }).catch(function () {
        clearTimeout(timer);
        timer = setTimeout(poll, 5000);
      });
    }

    function act(action, button) {
      button.disabled = true;
      api("POST", "/api/campaigns/" + id + "/" + action).then(function (c) {
        draw(c);
        toast(counted("campaign_" + action, c.cancelled), "ok");
        lastCounts = JSON.stringify(c.progress);
        if (staff) { loadRecipients(false); }
        schedule(c.status);
      }).catch(fail).then(function () { button.disabled = false; });
    }

    function loadRecipients(more) {
      var body = $("#recipients-body");
      if (!body) { return; }
      var params = new URLSearchParams();
      var filter = $("#recipients-filter").value;
      if (filter) { params.set("status", filter); }
      if (more && recipients.after) { params.set("after_id", recipients.after); }
      return fetchHtml("/campaigns/" + id + "/fragments/recipients?" + params.toString()).then(function (html) {
        var rows = nodesFrom(html || "");
        var count = rows.querySelectorAll("tr").length;
        if (!more) { body.textContent = ""; }
        body.appendChild(rows);
        recipients.after = body.lastElementChild ? body.lastElementChild.dataset.id : null;
        recipients.paged = more;
        $("#recipients-more").hidden = count < pageSize;
        $("#recipients-empty").hidden = body.children.length > 0;
      }).catch(function () { /* the next poll tries again */ });
    }

    $all("[data-action]", root).forEach(function (button) {
      button.addEventListener("click", function () {
        if (button.dataset.action !== "cancel") { act(button.dataset.action, button); return; }
        $("#cancel-confirm").hidden = false;
        $("#cancel-yes").focus();
      });
    });
    var yes = $("#cancel-yes");
    if (yes) {
      yes.addEventListener("click", function () { $("#cancel-confirm").hidden = true; act("cancel", yes); });
      $("#cancel-no").addEventListener("click", function () { $("#cancel-confirm").hidden = true; });
    }
    var filter = $("#recipients-filter");
    if (filter) {
      filter.addEventListener("change", function () {
        var exportLink = $("#recipients-export");
        exportLink.href = "/api/campaigns/" + id + "/recipients.csv" + (filter.value ? "?status=" + filter.value : "");
        loadRecipients(false);
      });
      $("#recipients-more").addEventListener("click", function () { loadRecipients(true); });
      loadRecipients(false);
    }
    schedule(root.dataset.status);
  }

  function campaignForm(form) {
    var csvText = null, previewed = false;
    var body = $("#cf-body"), template = $("#cf-template"), panel = $("#cf-preview-panel");
    // Where an API error naming a field is shown: its first part is enough (send_window.days.mon.start).
    var ERROR_PLACE = {name: "name", channel_id: "channel_id", body: "body", template_id: "body", audience: "audience",
      csv: "audience", search: "audience", contact_ids: "audience", starts_at: "starts_at", per_minute: "per_minute",
      send_window: "send_window"};

    function audienceKind() { return form.querySelector("input[name=audience]:checked").value; }

    function showAudience() {
      $all("[data-audience]", form).forEach(function (box) { box.hidden = box.dataset.audience !== audienceKind(); });
    }

    function clearErrors() {
      $all("[data-error-for]", form).forEach(function (place) { place.hidden = true; place.textContent = ""; });
      $all("[aria-invalid]", form).forEach(function (field) { field.removeAttribute("aria-invalid"); });
      var general = $("#cf-error");
      general.hidden = true;
      general.textContent = "";
    }

    function showError(field, message) {
      var key = ERROR_PLACE[String(field || "").split(/[.[]/)[0]];
      var place = (key && $('[data-error-for="' + key + '"]', form)) || $("#cf-error");
      place.textContent = place.textContent ? place.textContent + " " + message : message;
      place.hidden = false;
      var input = form.querySelector('[aria-describedby~="' + place.id + '"]');
      if (input) { input.setAttribute("aria-invalid", "true"); }
      if (key === "send_window") { $("#cf-window").open = true; }
    }

    function showApiError(error) {
      var detail = (error instanceof ApiError && error.error) || {};
      if (detail.problems && detail.problems.length) {
        detail.problems.forEach(function (problem) { showError(problem.field, problem.message); });
      } else if (error instanceof ApiError && (error.status === 422 || error.status === 404)) {
        showError(detail.field, error.message);
      } else {
        showError(null, explain(error));
      }
      var first = $all("[data-error-for], #cf-error", form).filter(function (place) { return !place.hidden; })[0];
      if (first) { first.scrollIntoView({block: "center"}); }
    }

    function pad(value) { return ("0" + value).slice(-2); }

    function sendWindow() {
      var days = {};
      $all("#cf-window tr[data-day]").forEach(function (row) {
        if (!$("[data-role=day-on]", row).checked) { return; }
        days[row.dataset.day] = {start: $("[data-role=day-start]", row).value.trim(),
          end: $("[data-role=day-end]", row).value.trim()};
      });
      var blocked = $("#cf-blocked").value.split(/[,;\s]+/).filter(Boolean).map(function (value) {
        var br = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(value);  // 25/12/2026, as people here write it
        return br ? br[3] + "-" + pad(br[2]) + "-" + pad(br[1]) : value;
      });
      return {timezone: "America/Sao_Paulo", days: days, blocked_dates: blocked};
    }

    function windowSummary() {
      // The same words as the server's: days in a row with the same hours are one run.
      var runs = [];
      $all("#cf-window tr[data-day]").forEach(function (row) {
        var name = $("label", row).textContent.trim();
        var hours = $("[data-role=day-on]", row).checked ?
          $("[data-role=day-start]", row).value.trim() + "–" + $("[data-role=day-end]", row).value.trim() : null;
        var last = runs[runs.length - 1];
        if (last && last.hours === hours) { last.to = name; } else { runs.push({from: name, to: name, hours: hours}); }
      });
      var parts = runs.filter(function (run) { return run.hours; }).map(function (run) {
        return (run.from === run.to ? run.from : fmt("day_range", {first: run.from, last: run.to})) + " " + run.hours;
      });
      $("#cf-window-summary").textContent = parts.length ? parts.join("; ") : fmt("window_never");
    }

    function payload() {
      var data = {name: $("#cf-name").value.trim(), channel_id: Number($("#cf-channel").value) || null};
      if (template.value) { data.template_id = Number(template.value); } else { data.body = body.value; }
      var kind = audienceKind();
      if (kind === "csv") { data.csv = csvText; } else { data.search = kind === "all" ? "" : $("#cf-search").value.trim(); }
      var starts = $("#cf-starts").value;  // 2026-12-07T08:00, read as Brasília time (no daylight saving since 2019)
      if (starts) { data.starts_at = (starts.length === 16 ? starts + ":00" : starts) + "-03:00"; }
      var perMinute = $("#cf-per-minute").value.trim();
      if (perMinute) { data.per_minute = Number(perMinute); }
      data.send_window = sendWindow();
      return data;
    }

    function complete() {
      var ok = true;
      if (!$("#cf-name").value.trim()) { showError("name", fmt("field_required")); ok = false; }
      if (!template.value && !body.value.trim()) { showError("body", fmt("field_required")); ok = false; }
      if (audienceKind() === "csv" && csvText === null) { showError("audience", fmt("csv_needed")); ok = false; }
      var badTime = $all("#cf-window tr[data-day]").some(function (row) {
        return $("[data-role=day-on]", row).checked && $all("input[data-role^=day-]:not([type=checkbox])", row)
          .some(function (input) { return !/^\d\d:\d\d$/.test(input.value.trim()); });
      });
      if (badTime) { showError("send_window", fmt("time_invalid")); ok = false; }
      var perMinute = $("#cf-per-minute").value.trim();
      if (perMinute && !/^[1-9]\d*$/.test(perMinute)) { showError("per_minute", fmt("per_minute_invalid")); ok = false; }
      return ok;
    }

    function fill(name, text) { $('[data-pv="' + name + '"]', panel).textContent = text; }

    function showPreview(result) {
      fill("recipients", number(result.recipients));
      fill("sendable", number(result.sendable));
      fill("segments", number(result.segments));
      fill("cost", result.estimated_cost === null ? fmt("no_price") : money(result.estimated_cost));
      fill("balance", result.balance === null ? "—" : money(result.balance));
      var warning = $("[data-pv=balance-warning]", panel);
      warning.hidden = true;
      if (result.enough_balance === false) {
        warning.textContent = fmt("balance_short", {cost: money(result.estimated_cost), balance: money(result.balance)});
        warning.hidden = false;
      } else if (result.balance === null && result.balance_error) {
        warning.textContent = fmt("balance_unknown", {error: result.balance_error});
        warning.hidden = false;
      }
      var reasons = Object.keys(result.skipped || {});
      $("[data-pv=skipped-box]", panel).hidden = reasons.length === 0;
      var skipped = $("[data-pv=skipped]", panel), examples = $("[data-pv=examples]", panel);
      skipped.textContent = "";
      examples.textContent = "";
      reasons.forEach(function (reason) {
        var item = listItem(fmt("skip_" + reason) + ": ", number(result.skipped[reason]));
        item.dataset.reason = reason;
        skipped.appendChild(item);
      });
      result.skip_examples.slice(0, 20).forEach(function (example) {
        var where = String(example.where).replace(/^line (\d+)$/, function (m, n) { return fmt("where_line", {n: n}); })
          .replace(/^contact (\d+)$/, function (m, n) { return fmt("where_contact", {n: n}); });
        examples.appendChild(listItem(where + " — " + fmt("skip_" + example.kind) + ": " + example.reason));
      });
      var messages = $("[data-pv=messages]", panel);
      messages.textContent = "";
      result.preview.forEach(function (message) {
        var item = document.createElement("li");
        var to = document.createElement("div");
        to.className = "pv-to muted";
        to.textContent = fmt("preview_to", {to: prettyPhone(message.to) + (message.name ? " · " + message.name : ""),
          segments: message.segments});
        var text = document.createElement("div");
        text.className = "pv-text";
        text.textContent = message.text;
        item.appendChild(to);
        item.appendChild(text);
        messages.appendChild(item);
      });
      panel.hidden = false;
      previewed = true;
      $("#cf-preview-title").scrollIntoView({block: "start"});
    }

    function preview(button) {
      clearErrors();
      if (!complete()) { return; }
      button.disabled = true;
      api("POST", "/api/campaigns/preview", payload()).then(showPreview).catch(function (error) {
        panel.hidden = true;
        showApiError(error);
      }).then(function () { button.disabled = false; });
    }

    function create(start) {
      clearErrors();
      if (!complete()) { return; }
      var buttons = $all("[data-create]", panel);
      buttons.forEach(function (button) { button.disabled = true; });
      var data = payload();
      data.start = start;
      api("POST", "/api/campaigns", data).then(function (campaign) {
        window.location.href = "/campaigns/" + campaign.id;
      }).catch(function (error) {
        showApiError(error);
        buttons.forEach(function (button) { button.disabled = false; });
      });
    }

    function changed(event) {
      if (event.target.closest && event.target.closest("#cf-preview-panel")) { return; }
      if (event.target.closest && event.target.closest("#cf-window")) { windowSummary(); }
      if (!previewed) { return; }
      previewed = false;
      panel.hidden = true;
      var note = $("#cf-error");
      note.textContent = fmt("preview_again");
      note.hidden = false;
    }

    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    $all("input[name=audience]", form).forEach(function (radio) { radio.addEventListener("change", showAudience); });
    $("#cf-csv").addEventListener("change", function (event) {
      var file = event.target.files[0], info = $("#cf-csv-info");
      csvText = null;
      info.textContent = "";
      if (!file) { return; }
      file.text().then(function (text) {
        csvText = text;
        var lines = text.split(/\r\n|\r|\n/).filter(function (line) { return line.trim(); }).length;
        info.textContent = fmt("csv_read", {name: file.name, count: number(lines)});
      });
    });
    template.addEventListener("change", function () {
      var option = template.selectedOptions[0];
      if (template.value) { body.value = option.dataset.body; }
      body.readOnly = Boolean(template.value);  // a saved template is sent as it is stored
      countBody();
    });
    function countBody() {
      var info = countSegments(body.value);
      $("#cf-segments").textContent = body.value ?
        fmt("segments", {chars: info.characters, segments: info.segments, encoding: info.encoding}) : "";
    }
    body.addEventListener("input", countBody);
    $all("[data-variable]", form).forEach(function (chip) {
      chip.addEventListener("click", function () {
        if (!body.readOnly) { insertAtCursor(body, "{{ " + chip.dataset.variable + " }}"); countBody(); }
      });
    });
    $("#cf-preview").addEventListener("click", function (event) { preview(event.currentTarget); });
    $all("[data-create]", panel).forEach(function (button) {
      button.addEventListener("click", function () { create(button.dataset.create === "start"); });
    });
    showAudience();
  }


  /* ---------------------------------------------------------------- contacts (web/contacts.py) */

  function newConversationForm(form) {
    // Only the chosen channel's notes and templates show, and only they are sent; a WhatsApp
    // channel whose 24-hour window is closed can only start with an approved template.
    var channel = $("#nc-channel", form);
    function chosenPanel(box) {
      var picker = $("[data-role=template-picker]", box);
      $all("[data-template-panel]", box).forEach(function (panel) {
        var on = picker.value === panel.dataset.templatePanel;
        panel.hidden = !on;
        $all("input", panel).forEach(function (input) { input.disabled = !on; });
      });
    }
    function update() {
      var option = channel.selectedOptions[0];
      var id = channel.value, whatsapp = option.dataset.kind === "whatsapp", closed = option.dataset.windowOpen === "0";
      $all(".channel-info", form).forEach(function (info) { info.hidden = info.dataset.forChannel !== id; });
      var boxes = $all("[data-templates-for]", form), mine = null;
      boxes.forEach(function (box) {
        var on = box.dataset.templatesFor === id;
        box.hidden = !on;
        $("[data-role=template-picker]", box).disabled = !on;
        if (on) { mine = box; chosenPanel(box); }
        else { $all("input", box).forEach(function (input) { input.disabled = true; }); }
      });
      $("[data-role=no-templates]", form).hidden = !!mine;
      var textRadio = $("input[name=mode][value=text]", form), templateRadio = $("input[name=mode][value=template]", form);
      $("[data-role=template-mode]", form).hidden = !whatsapp;
      textRadio.disabled = whatsapp && closed;
      if (!whatsapp) { textRadio.checked = true; }
      if (whatsapp && closed) { templateRadio.checked = true; }
      var mode = templateRadio.checked ? "template" : "text";
      $all("[data-mode]", form).forEach(function (part) { part.hidden = part.dataset.mode !== mode; });
      $("#nc-body", form).disabled = mode !== "text";
    }
    channel.addEventListener("change", update);
    $all("input[name=mode]", form).forEach(function (radio) { radio.addEventListener("change", update); });
    $all("[data-role=template-picker]", form).forEach(function (picker) {
      picker.addEventListener("change", function () { chosenPanel(picker.closest("[data-templates-for]")); });
    });
    form.addEventListener("submit", function () { $("#nc-send", form).disabled = true; });
    update();
  }

  function contactImportPage(root) {
    // While a dry run or an import runs, follow its progress; when its state changes, the server
    // draws the next step.
    var status = root.dataset.status;
    if (status !== "checking" && status !== "importing") { return; }
    var bar = $("#import-bar"), rows = $("#import-rows");
    function poll() {
      api("GET", "/contacts/import/" + root.dataset.importId + "/status").then(function (found) {
        if (found.status !== status) { window.location.reload(); return; }
        if (found.rows_total) {
          bar.max = found.rows_total; bar.value = found.rows_done;
          rows.textContent = fmt("import_rows_of", {done: number(found.rows_done), total: number(found.rows_total)});
        } else { rows.textContent = fmt("import_rows", {done: number(found.rows_done)}); }
        setTimeout(poll, 1000);
      }).catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 700);
  }

  /* ---------------------------------------------------------------- narrow screens
   * The top bar folds into a menu whenever its entries do not fit on one line (a phone, or a
   * narrow window with many entries). Below 1180 px the inbox shows one pane beside the list, below
   * 760 px one pane in all: the list, the conversation or the contact. Opening a conversation is a
   * page of its own (/inbox/ID) and the contact is a history entry (#contato), so the phone's back
   * button goes contact → conversation → list. */

  var CONTACT_HASH = "#contato";

  function fitTopbar() {
    var bar = $(".topbar"), toggle = $("#menu-toggle");
    if (!bar || !toggle) { return; }
    bar.classList.remove("collapsed");
    var collapsed = toggle.offsetParent !== null || bar.scrollWidth > bar.clientWidth;  // the phone's CSS shows the toggle
    bar.classList.toggle("collapsed", collapsed);
    if (!collapsed) { setMenu(false); }
  }

  function setMenu(open) {
    var bar = $(".topbar"), toggle = $("#menu-toggle");
    if (!bar || !toggle) { return; }
    bar.classList.toggle("menu-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  }

  function showPane() {
    if (!inbox) { return; }
    inbox.dataset.view = !state.openId ? "list" : location.hash === CONTACT_HASH ? "contact" : "conversation";
  }

  function openContactPane() {
    if (location.hash !== CONTACT_HASH) { history.pushState({contactPane: true}, "", CONTACT_HASH); }
    showPane();
    var pane = $("#contact-pane");
    if (pane) { pane.scrollTop = 0; }
  }

  function closeContactPane() {
    if (history.state && history.state.contactPane) { history.back(); return; }  // popstate redraws
    history.replaceState(null, "", location.pathname + location.search);  // opened at #contato directly
    showPane();
  }

  function wireNarrowScreens() {
    var toggle = $("#menu-toggle");
    if (toggle) {
      toggle.addEventListener("click", function (event) {
        event.stopPropagation();
        setMenu(toggle.getAttribute("aria-expanded") !== "true");
      });
      document.addEventListener("click", function (event) {
        if (!event.target.closest("#topbar-menu")) { setMenu(false); }
      });
      document.addEventListener("keydown", function (event) { if (event.key === "Escape") { setMenu(false); } });
      window.addEventListener("resize", fitTopbar);
      fitTopbar();
    }
    var show = $("#show-contact"), back = $("#back-to-conversation");
    if (show) { show.addEventListener("click", openContactPane); }
    if (back) { back.addEventListener("click", closeContactPane); }
    window.addEventListener("popstate", showPane);
    showPane();
  }

  function wire() {
    wireNarrowScreens();
    var filters = $("#filters");
    if (filters) {
      filters.querySelector("button[type=submit]").hidden = true;  // changes apply at once; Enter searches
      $all("input[type=radio], select", filters).forEach(function (field) {
        field.addEventListener("change", function () { filters.submit(); });
      });
    }
    var more = $("#load-more");
    if (more) { more.addEventListener("click", loadMore); }

    var pane = $("#conversation-pane");
    if (pane) {
      pane.addEventListener("click", function (event) {
        var button = event.target.closest("[data-action]");
        if (button && !button.disabled) { act(button.dataset.action, button); }
        if (event.target.id === "load-older") { loadOlder(); }
        var reply = event.target.closest("[data-reply-to]");
        if (reply) { setReply(Number(reply.dataset.replyTo), reply.dataset.replyText); }
        var fallback = event.target.closest("[data-sms-fallback]");
        if (fallback && !fallback.disabled) { smsFallback(fallback); }
        var sendTpl = event.target.closest("[data-role=send-template]");
        if (sendTpl && !sendTpl.disabled) { sendTemplate(sendTpl.closest(".wa-template"), sendTpl); }
      });
    }
    var composer = $("#composer");
    if (composer) {
      var body = $("#composer-body");
      composer.addEventListener("submit", send);
      body.addEventListener("input", function () { updateCounter(); composerError(null); });
      body.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { send(event); }
      });
      $("#composer-channel").addEventListener("change", function () { updateCounter(); composerError(null); updateComposer(); });
      var file = $("#composer-file");
      if (file) { file.addEventListener("change", function () { sendFile(file); }); }
      var cancel = $("#reply-cancel");
      if (cancel) { cancel.addEventListener("click", function () { setReply(null); }); }
      var waPicker = $("#wa-template-picker");
      if (waPicker) { waPicker.addEventListener("change", function () { showTemplate(waPicker.value); }); }
      var waTemplates = $("#wa-templates");
      if (waTemplates) {
        waTemplates.addEventListener("toggle", function () { waTemplates.dataset.touched = "1"; });
        waTemplates.addEventListener("keydown", function (event) {
          // Enter in a parameter field must not send the composer's free text.
          if (event.key === "Enter" && event.target.matches("input")) {
            event.preventDefault();
            var panel = event.target.closest(".wa-template");
            if (panel) { sendTemplate(panel, $("[data-role=send-template]", panel)); }
          }
        });
      }
      $("#quick-picker").addEventListener("change", function (event) {
        var option = event.target.selectedOptions[0];
        if (option && option.value) { insertAtCursor(body, option.dataset.body); }
        event.target.value = "";
      });
      $("#template-picker").addEventListener("change", function (event) {
        var templateId = event.target.value;
        event.target.value = "";
        if (!templateId) { return; }
        api("POST", "/api/conversations/" + state.openId + "/render-template", {template_id: Number(templateId)})
          .then(function (rendered) { insertAtCursor(body, rendered.text); })
          .catch(function (error) {
            if (error.error && error.error.field === "template_id" && !state.contactId) { toast(fmt("template_needs_contact"), "error"); }
            else { fail(error); }
          });
      });
      updateCounter();
      updateComposer();
    }
    var contactPane = $("#contact-pane");
    if (contactPane) {
      contactPane.addEventListener("input", function (event) {
        if (event.target.matches("[data-role=contact-search]")) { searchContacts(event.target); }
      });
      contactPane.addEventListener("click", function (event) {
        var button = event.target.closest("[data-link-contact]");
        if (!button) { return; }
        api("POST", "/api/conversations/" + state.openId + "/contact", {contact_id: Number(button.dataset.linkContact)})
          .then(function () { toast(fmt("contact_linked"), "ok"); return contactRefreshAll(); }).catch(fail);
      });
      contactPane.addEventListener("submit", function (event) {
        var form = event.target.closest("form[data-form]");
        if (form) { event.preventDefault(); submitContact(form); }
      });
    }
    var campaignRoot = $("#campaign");
    if (campaignRoot) { campaignPage(campaignRoot); }
    var campaignsRoot = $("#campaigns");
    if (campaignsRoot) { campaignList(campaignsRoot); }
    var campaignFormRoot = $("#campaign-form");
    if (campaignFormRoot) { campaignForm(campaignFormRoot); }
    var newConversation = $("#new-conversation-form");
    if (newConversation) { newConversationForm(newConversation); }
    var importRoot = $("#contact-import");
    if (importRoot) { contactImportPage(importRoot); }
    var notify = $("#notify-button");
    if (notify) { notify.addEventListener("click", enableNotifications); }
    var status = $("#channel-status-button");
    if (status) { status.addEventListener("click", showChannelStatus); }

    document.addEventListener("visibilitychange", function () { if (!document.hidden) { markReadSoon(); } });

    if (inbox) {
      readScope();
      scrollToEnd();
      if (state.openId) { markReadSoon(); setInterval(watchPendingMedia, 3000); }
      connect();
      try {
        if (!sessionStorage.getItem("cc-channel-status")) {
          sessionStorage.setItem("cc-channel-status", "1");
          showChannelStatus();
        }
      } catch (ignored) { /* storage disabled: skip the automatic check */ }
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", wire); }
  else { wire(); }
})();
