"""Regenerate docs/screenshots/inbox.png and conversation.png from the running product.

    uv run python docs/make_screenshots.py

Starts the product on a fresh SQLite database with the Kolmeya sandbox, fills it the way real use
would (SMS sent through the API and the sandbox, customers' replies posted to the webhook,
operators taking and closing conversations), then logs in with Debian's Chromium and takes the
pictures. Every name and number is made up.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contact_center.db import make_engine  # noqa: E402
from contact_center.migrations import upgrade  # noqa: E402
from tests.live import PASSWORD, Live, start_live  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TEAM = (("sofia", "Sofia Reis", "supervisor"), ("ana", "Ana Lima", "agent"), ("bruno", "Bruno Dias", "agent"))

CUSTOMERS = [
    # name, mobile, what we sent (None: they wrote first), what they answered
    ("Maria Souza", "+55 11 98765-0001", "Olá Maria! Sua fatura de novembro (R$ 189,90) vence dia 28.",
     "Oi! Posso pagar por Pix? Não encontrei o código no e-mail."),
    ("João Pereira", "+55 21 99876-0002", None, "Bom dia, meu pedido 4471 ainda não chegou"),
    ("Carla Nunes", "+55 41 99123-0003", "Carla, seu pedido 4480 saiu para entrega hoje.", "Obrigada!! 😊"),
    ("Pedro Alves", "+55 31 98111-0004", None, "Quero cancelar a assinatura"),
    (None, "+55 48 99191-0005", None, "<img src=x onerror=alert(1)> isso é um teste?"),
    ("Fernanda Lima", "+55 51 99888-0006", "Fernanda, confirmamos seu agendamento para 02/12 às 14h.",
     "Perfeito, estarei lá"),
    ("Ricardo Gomes", "+55 61 98222-0007", None, "Vocês abrem no sábado?"),
    ("Juliana Costa", "+55 85 99777-0008", "Juliana, seu boleto foi registrado.", "SAIR"),
    ("Marcos Ribeiro", "+55 71 98333-0009", None, "Preciso da segunda via da nota fiscal"),
    ("Beatriz Rocha", "+55 11 97444-0010", None, "Oi, tudo bem? Gostaria de saber o prazo de troca"),
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/contact-center.db")
        upgrade(engine)
        live, stop = start_live(
            engine, Path(tmp), team=TEAM, channel_name="SMS Atendimento",
            settings_options={"company_name": "Loja Exemplo"},
            sandbox_options={"status_delay_seconds": 0.1, "balance": "1284.37",
                             "final_codes": {"5585997770008": 4}})  # Juliana's first SMS is not delivered
        tokens = {username: live.auth(username) for username, _, _ in TEAM}
        try:
            conversations = populate(live, tokens)
            shoot(sync_playwright, live.base_url, conversations)
        finally:
            stop()
            engine.dispose()
    print(f"wrote {OUT / 'inbox.png'} and {OUT / 'conversation.png'}")


def populate(live: Live, tokens: dict) -> dict[str, int]:
    http, reply_url, sofia = live.http, live.reply_url, tokens["sofia"]
    http.post("/api/templates", json={"name": "Segunda via", "body": "Olá {{ contact.first_name }}, segue a "
              "segunda via: https://exemplo.com.br/fatura. Qualquer dúvida, é só responder."}, headers=sofia)
    http.post("/api/quick-replies", json={"title": "Horário", "body": "Atendemos de segunda a sexta, das 8h às "
              "18h, e aos sábados das 9h às 13h."}, headers=sofia)
    conversations: dict[str, int] = {}
    for name, mobile, ours, theirs in CUSTOMERS:
        if name:
            email = f"{name.split()[0].lower()}@exemplo.com.br"
            http.post("/api/contacts", json={"name": name, "mobile": mobile, "email": email}, headers=sofia)
        if ours:
            sent = http.post("/api/sms", json={"to": mobile, "body": ours}, headers=sofia).json()
            live.wait_for(lambda sent=sent: http.get(f"/api/messages/{sent['id']}", headers=sofia).json()["status"]
                          in ("delivered", "failed"), what=f"delivery to {mobile}")
        digits = "".join(ch for ch in mobile if ch.isdigit())
        http.post(reply_url, json={"phone": digits, "message": theirs}).raise_for_status()
        found = http.get("/api/conversations", params={"q": mobile, "status": "any"}, headers=sofia).json()
        conversations[name or mobile] = found["items"][0]["id"]
        time.sleep(0.05)

    def act(who: str, conversation: str, action: str, **body):
        http.post(f"/api/conversations/{conversations[conversation]}/{action}", json=body or None,
                  headers=tokens[who]).raise_for_status()

    act("ana", "Maria Souza", "take")
    maria = conversations["Maria Souza"]
    sent = http.post(f"/api/conversations/{maria}/messages", json={
        "body": "Pode sim, Maria! Vou gerar o código Pix para você agora mesmo."}, headers=tokens["ana"]).json()
    live.wait_for(lambda: http.get(f"/api/messages/{sent['id']}", headers=sofia).json()["status"] == "delivered",
                  what="delivered")
    http.post(reply_url, json={"phone": "5511987650001", "message": "Ótimo, fico no aguardo"}).raise_for_status()
    live.pause_dispatch()  # the last answer stays queued: the picture shows the clock
    http.post(f"/api/conversations/{maria}/messages", json={"body": "Código enviado por e-mail também. "
              "Posso ajudar em algo mais?"}, headers=tokens["ana"]).raise_for_status()
    act("bruno", "João Pereira", "take")
    act("ana", "Carla Nunes", "take")
    act("ana", "Carla Nunes", "close")
    act("bruno", "Pedro Alves", "take")
    act("bruno", "Pedro Alves", "transfer", assignee_id=_user_id(http, tokens, "sofia"))
    act("ana", "Fernanda Lima", "take")
    return conversations


def _user_id(http: httpx.Client, tokens: dict, username: str) -> int:
    return http.get("/api/me", headers=tokens[username]).json()["id"]


def shoot(sync_playwright, base: str, conversations: dict[str, int]) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(base_url=base, viewport={"width": 1440, "height": 860}, device_scale_factor=1,
                                      locale="pt-BR")
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=username]", "ana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox")
        page.goto(f"/inbox/{conversations['Maria Souza']}")
        page.wait_for_selector("#live-status[data-state=open]")
        # opening the conversation marks it read; the list and the badge follow live
        page.wait_for_selector(f"#row-{conversations['Maria Souza']} [data-role=unread]", state="detached")
        page.click("#channel-status-button")
        page.wait_for_selector(".toast")
        page.fill("#composer-body", "Segue o código Pix copia e cola: 00020126580014br.gov.bcb.pix…")
        page.screenshot(path=str(OUT / "inbox.png"))
        page.locator("#conversation-pane").screenshot(path=str(OUT / "conversation.png"))
        browser.close()


if __name__ == "__main__":
    main()
