"""The Odoo partner sync against the sandbox XML-RPC server, on SQLite and PostgreSQL: full and
incremental runs, phone forms matched to existing contacts, rejected partners, and each way a
run can fail (wrong credentials, a missing field, Odoo going away) leaving nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from contact_center.contacts import service as contacts
from contact_center.contacts.models import Contact
from contact_center.db import transaction
from contact_center.odoo.client import OdooLoginRefused, OdooUnreachable
from contact_center.odoo.config import OdooNotConfigured, parse_field_map
from contact_center.odoo.sandbox import fictitious_cpf, sample_partners
from contact_center.odoo import sync
from contact_center.odoo.models import OdooSyncState
from contact_center.odoo.sync import OdooFieldMissing, OdooSyncRunning, read_state, sync_due, sync_partners
from tests.odoo.conftest import config_for

PARTNERS = 3000


def count_contacts(session_factory) -> int:
    with transaction(session_factory) as session:
        return session.scalar(select(func.count()).select_from(Contact))


def contact_of(session_factory, partner_id: int) -> Contact | None:
    with transaction(session_factory) as session:
        return session.scalar(select(Contact).where(Contact.odoo_partner_id == partner_id))


def state_of(session_factory):
    with transaction(session_factory) as session:
        return read_state(session)


def test_full_then_incremental_sync(session_factory, odoo, odoo_config):
    for partner in sample_partners(PARTNERS):
        odoo.put(partner)
    seen = []
    first = sync_partners(session_factory, odoo_config, page_size=500, progress=lambda read, total: seen.append(read))
    assert (first.read, first.created, first.updated, first.rejected_count) == (PARTNERS, PARTNERS, 0, 0)
    assert seen == [0, 500, 1000, 1500, 2000, 2500, 3000]
    assert count_contacts(session_factory) == PARTNERS
    assert first.mark == ("2026-11-02 09:00:01", 3000)  # every tenth partner was written a second later

    # Every phone form became the same E.164 mobile (+55 11 9 + the partner's digits).
    for n in range(1, 9):
        contact = contact_of(session_factory, n)
        assert contact.mobile_e164 == f"+55119{n:08d}", (n, contact.mobile)
        assert contact.document == fictitious_cpf(100_000_000 + n)
        assert contact.email == f"cliente{n}@example.com"
    assert contact_of(session_factory, 4).mobile == "(11) 9 0000-0004"  # its landline's area code
    assert contact_of(session_factory, 5).phone_e164 == "+551130000005"  # the second number of its phone field

    # Nothing changed in Odoo: an incremental run reads nothing.
    again = sync_partners(session_factory, odoo_config, page_size=500)
    assert (again.read, again.created, again.updated) == (0, 0, 0)

    # Ten partners change (one of them gets a new mobile), five are new.
    for n in range(100, 110):
        odoo.put({**odoo.partners[n], "email": f"novo{n}@example.com", "write_date": "2026-11-03 08:00:00"})
    odoo.put({**odoo.partners[200], "mobile": "(21) 98888-0200", "phone": False, "write_date": "2026-11-03 08:00:00"})
    for partner in sample_partners(5, start=PARTNERS + 1, write_date="2026-11-03 08:00:00"):
        odoo.put(partner)
    incremental = sync_partners(session_factory, odoo_config, page_size=500)
    assert (incremental.read, incremental.created, incremental.updated, incremental.unchanged) == (16, 5, 11, 0)
    assert contact_of(session_factory, 105).email == "novo105@example.com"
    assert contact_of(session_factory, 200).mobile_e164 == "+5521988880200"
    assert count_contacts(session_factory) == PARTNERS + 5
    assert incremental.mark == ("2026-11-03 08:00:00", PARTNERS + 5)

    # --full reads everything again and changes nothing: no duplicates, no updates.
    full = sync_partners(session_factory, odoo_config, full=True, page_size=1000)
    assert (full.read, full.created, full.updated, full.unchanged) == (PARTNERS + 5, 0, PARTNERS + 5, PARTNERS + 5)
    assert count_contacts(session_factory) == PARTNERS + 5
    state = state_of(session_factory)
    assert (state.last_read, state.last_created, state.last_error) == (PARTNERS + 5, 0, None)
    assert state.last_succeeded_at is not None


@pytest.mark.parametrize("written", [
    "+55 11 90000-0042", "(11) 90000-0042", "11900000042", "011 90000 0042", "5511900000042", "0XX11 90000-0042",
])
def test_a_partner_updates_the_contact_with_its_phone_however_either_side_wrote_it(db, session_factory, odoo,
                                                                                    odoo_config, written):
    existing = contacts.create_contact(db, {"name": "Maria (cadastro antigo)", "mobile": written})
    db.commit()
    odoo.put({"id": 42, "name": "Maria Souza", "mobile": "(11) 9 0000-0042", "write_date": "2026-11-02 09:00:00"})
    report = sync_partners(session_factory, odoo_config)
    assert (report.created, report.updated) == (0, 1)
    linked = contact_of(session_factory, 42)
    assert linked.id == existing.id and linked.name == "Maria Souza"
    assert count_contacts(session_factory) == 1


def test_a_partner_updates_the_contact_with_its_cpf_and_a_landline_never_meets_a_mobile(db, session_factory, odoo,
                                                                                         odoo_config):
    cpf = fictitious_cpf(123_456_789)
    by_cpf = contacts.create_contact(db, {"name": "João", "document": cpf, "phone": "(11) 3000-1111"})
    landline = contacts.create_contact(db, {"name": "Loja", "phone": "(11) 3000-0077"})
    db.commit()
    odoo.put({"id": 7, "name": "João da Silva", "vat": f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}",
              "mobile": "(11) 90000-0007", "write_date": "2026-11-02 09:00:00"})
    odoo.put({"id": 8, "name": "Ana", "mobile": "(11) 93000-0077", "write_date": "2026-11-02 09:00:00"})
    report = sync_partners(session_factory, odoo_config)
    assert (report.created, report.updated) == (1, 1)
    assert contact_of(session_factory, 7).id == by_cpf.id
    assert contact_of(session_factory, 8).id != landline.id


def test_rejected_partners_are_reported_with_id_and_reason_and_the_rest_go_on(session_factory, odoo, odoo_config):
    stamp = {"write_date": "2026-11-02 09:00:00"}
    cpf = fictitious_cpf(555_000_111)
    odoo.put({"id": 1, "name": False, "mobile": "(11) 90000-0001", **stamp})
    odoo.put({"id": 2, "name": "CPF Errado", "vat": "123.456.789-00", "mobile": "(11) 90000-0002", **stamp})
    odoo.put({"id": 3, "name": "Sem Número", "email": "sem@example.com", **stamp})
    odoo.put({"id": 4, "name": "Telefone Ruim", "phone": "não tem", **stamp})
    odoo.put({"id": 5, "name": "Titular", "vat": cpf, "mobile": "(11) 90000-0005", **stamp})
    odoo.put({"id": 6, "name": "Titular (duplicado no Odoo)", "vat": cpf, "mobile": "(11) 90000-0006", **stamp})
    odoo.put({"id": 7, "name": "Mesmo Celular", "mobile": "+55 11 90000-0005", **stamp})
    odoo.put({"id": 8, "name": "Empresa Ltda", "vat": "12.345.678/0001-95", "phone": "(11) 3000-0008", **stamp})
    odoo.put({"id": 9, "name": "Arquivado", "mobile": "(11) 90000-0009", "active": False, **stamp})

    report = sync_partners(session_factory, odoo_config)
    reasons = {r.partner_id: (r.field, r.reason) for r in report.rejected}
    assert sorted(reasons) == [1, 2, 3, 4, 6, 7]
    assert reasons[1] == ("name", "o parceiro não tem nome")
    assert reasons[2][0] == "vat" and reasons[2][1].startswith("CPF inválido:")
    assert reasons[3][1] == "sem telefone, celular nem CPF: nada alcançaria este contato"
    assert reasons[4][0] == "phone" and "não tem" in reasons[4][1]
    assert reasons[6] == ("vat", f"o CPF {cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]} já é de outro contato desta "
                                 "sincronização, do parceiro 5 do Odoo")
    assert "do parceiro 5 do Odoo" in reasons[7][1]
    assert (report.read, report.created, report.rejected_count) == (8, 2, 6)  # the archived one is not read
    assert contact_of(session_factory, 8).document is None  # a CNPJ is not a CPF
    assert count_contacts(session_factory) == 2

    # Fixed in Odoo, partner 2 comes in with the next run; the others that did not change are not read again.
    odoo.put({**odoo.partners[2], "vat": fictitious_cpf(555_000_222), "write_date": "2026-11-02 10:00:00"})
    later = sync_partners(session_factory, odoo_config)
    assert (later.read, later.created, later.rejected_count) == (1, 1, 0)


def test_mapped_fields_fill_contact_fields_and_unknown_targets_are_refused(session_factory, odoo):
    odoo.put({"id": 1, "name": "Maria", "mobile": False, "x_celular2": "(48) 99191-0234",
              "comment": "<p>Prefere &eacute; contato à tarde</p>", "write_date": "2026-11-02 09:00:00"})
    config = config_for(odoo, fields="x_celular2=mobile, comment=notes")
    assert sync_partners(session_factory, config).created == 1
    contact = contact_of(session_factory, 1)
    assert (contact.mobile_e164, contact.notes) == ("+5548991910234", "Prefere é contato à tarde")

    with pytest.raises(OdooNotConfigured, match="o contato não tem o campo 'Valor Parcela'"):
        parse_field_map("x_valor_parcela=Valor Parcela")
    with pytest.raises(OdooNotConfigured, match="deveria ser CAMPO_DO_ODOO=CAMPO_DO_CONTATO"):
        parse_field_map("x_celular2")


def test_a_mapped_odoo_field_fills_a_contact_field_the_business_defined(session_factory, odoo):
    from contact_center.contacts import fields

    odoo.put({"id": 7, "name": "Joana", "mobile": "(11) 90000-0007", "x_valor_parcela": 1234.5,
              "write_date": "2026-11-02 09:00:00"})
    config = config_for(odoo, fields="x_valor_parcela=valor_parcela")
    with pytest.raises(OdooNotConfigured) as refused:  # not a field of ours yet: refused before anything is read
        sync_partners(session_factory, config)
    assert refused.value.message == ("CONTACT_CENTER_ODOO_FIELDS: o contato não tem o campo 'valor_parcela'; "
                                     "os campos são name, phone, mobile, email, document, notes")
    assert count_contacts(session_factory) == 0
    with transaction(session_factory) as session:
        fields.add_field(session, key="valor_parcela", label="Valor da parcela", type="money")
    assert sync_partners(session_factory, config).created == 1
    contact = contact_of(session_factory, 7)
    with transaction(session_factory) as session:
        assert {k: str(v) for k, v in fields.values_for(session, [contact.id])[contact.id].items()} == {
            "valor_parcela": "1234.50"}
    odoo.put({"id": 7, "name": "Joana", "mobile": "(11) 90000-0007", "x_valor_parcela": "muito",
              "write_date": "2026-11-03 09:00:00"})
    report = sync_partners(session_factory, config)
    assert report.rejected_count == 1 and report.rejected[0].partner_id == 7  # a value of the wrong form


def test_wrong_credentials_are_a_clear_error_and_change_nothing(session_factory, odoo):
    odoo.put({"id": 1, "name": "Maria", "mobile": "(11) 90000-0001", "write_date": "2026-11-02 09:00:00"})
    with pytest.raises(OdooLoginRefused) as refused:
        sync_partners(session_factory, config_for(odoo, api_key="chave-errada-9999"))
    assert refused.value.message.startswith("Odoo recusou o login: confira usuário e chave de API")
    assert "chave-errada-9999" not in refused.value.message
    assert count_contacts(session_factory) == 0
    state = state_of(session_factory)
    assert state.last_error == refused.value.message and state.mark_write_date is None
    assert odoo.calls == []  # nothing was asked of Odoo past the login


def test_a_field_missing_in_odoo_is_named_with_what_exists(session_factory, odoo):
    odoo.put({"id": 1, "name": "Maria", "mobile": "(11) 90000-0001", "write_date": "2026-11-02 09:00:00"})
    with pytest.raises(OdooFieldMissing) as missing:
        sync_partners(session_factory, config_for(odoo, fields="x_celular=mobile"))
    assert missing.value.message == (
        "o campo 'x_celular' (para 'mobile') não existe em res.partner no Odoo; parecidos: x_celular2. "
        "Confira CONTACT_CENTER_ODOO_FIELDS (campos personalizados que existem: x_celular2, x_valor_parcela)")
    assert count_contacts(session_factory) == 0


def test_odoo_going_away_mid_sync_keeps_what_was_stored_and_the_next_run_continues(session_factory, odoo,
                                                                                   odoo_config):
    partners = sample_partners(PARTNERS)
    for partner in partners:
        odoo.put(partner)
    thousandth = sorted(partners, key=lambda p: (p["write_date"], p["id"]))[999]
    odoo.go_away_after(2)  # two pages of 500, then no answer
    with pytest.raises(OdooUnreachable) as gone:
        sync_partners(session_factory, odoo_config, page_size=500)
    assert gone.value.message.startswith(f"Odoo em {odoo.url} não respondeu a res.partner.search_read")
    assert count_contacts(session_factory) == 1000
    state = state_of(session_factory)
    assert (state.mark_write_date, state.mark_partner_id) == (thousandth["write_date"], thousandth["id"])
    assert state.last_error == gone.value.message and state.last_read == 1000

    odoo.come_back()
    rest = sync_partners(session_factory, odoo_config, page_size=500)
    assert (rest.read, rest.created, rest.updated) == (2000, 2000, 0)
    assert count_contacts(session_factory) == PARTNERS
    assert state_of(session_factory).last_error is None


def test_odoo_not_answering_at_all_is_a_clear_error(session_factory, odoo):
    config = config_for(odoo)
    odoo.stop()
    with pytest.raises(OdooUnreachable, match=r"não respondeu a authenticate \(ConnectionRefusedError"):
        sync_partners(session_factory, config)


def test_the_periodic_sync_is_due_after_its_interval(session_factory, odoo, odoo_config):
    assert sync_due(session_factory, 60)
    sync_partners(session_factory, odoo_config)
    assert not sync_due(session_factory, 60)
    assert sync_due(session_factory, 0)


def test_the_periodic_job_syncs_when_configured_and_due(runtime, session_factory, odoo):
    odoo.put({"id": 1, "name": "Maria", "mobile": "(11) 90000-0001", "write_date": "2026-11-02 09:00:00"})
    runtime.jobs.sync_odoo()  # no interval: the job does nothing
    assert count_contacts(session_factory) == 0

    runtime.settings = runtime.settings.model_copy(update={"odoo_sync_interval_minutes": 30})
    runtime.jobs.sync_odoo()
    assert contact_of(session_factory, 1) is not None
    odoo.put({"id": 2, "name": "Ana", "mobile": "(11) 90000-0002", "write_date": "2026-11-02 09:05:00"})
    runtime.jobs.sync_odoo()  # 30 minutes have not passed
    assert contact_of(session_factory, 2) is None


def test_one_run_at_a_time_and_a_killed_run_holds_the_sync_only_until_its_lease_lapses(session_factory, odoo,
                                                                                       odoo_config):
    odoo.put({"id": 1, "name": "Maria", "mobile": "(11) 90000-0001", "write_date": "2026-11-02 09:00:00"})
    sync._begin(session_factory)  # a run that started (in another process) and is still going, or was killed
    with pytest.raises(OdooSyncRunning, match="outra sincronização com o Odoo está em andamento desde"):
        sync_partners(session_factory, odoo_config)
    assert count_contacts(session_factory) == 0 and odoo.calls == []

    with transaction(session_factory) as session:  # its lease lapses
        session.execute(update(OdooSyncState).values(running_until=sync.utcnow() - sync.LEASE))
    assert sync_partners(session_factory, odoo_config).created == 1
    assert state_of(session_factory).running_until is None
