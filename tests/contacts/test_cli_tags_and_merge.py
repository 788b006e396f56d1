"""`contact-center contacts tag/untag/duplicates/merge` and the duplicate warning of `add`, run as a
user runs them: real processes on a real data directory."""

from __future__ import annotations

from tests.test_cli import run_cli


def test_tags_duplicates_and_merge_from_the_command_line(tmp_path):
    def cli(*args, input=None):
        return run_cli("contacts", *args, data_dir=tmp_path, input=input)

    assert run_cli("db", "upgrade", data_dir=tmp_path).returncode == 0
    assert cli("add", "Maria Souza", "--mobile", "(48) 99191-0234", "--tag", "VIP").returncode == 0

    refused = cli("add", "Maria S.", "--phone", "554891910234", input="n\n")
    assert refused.returncode == 1
    assert "já é do contato 1 (Maria Souza)" in refused.stderr
    assert "2 Maria" not in cli("list").stdout
    assert cli("add", "Maria S.", "--phone", "554891910234", "--email", "maria@example.com",
               input="y\n").returncode == 0
    assert cli("add", "Outra", "--mobile", "11 90000-0009", "--create-anyway").returncode == 0

    tagged = cli("tag", "2", "Inadimplente", "vip")
    assert tagged.returncode == 0 and "2 tag(s) added" in tagged.stdout
    untagged = cli("untag", "2", "INADIMPLENTE")
    assert untagged.returncode == 0 and "1 tag(s) removed" in untagged.stdout
    bad = cli("tag", "2", "a;b")
    assert bad.returncode == 1 and "vírgula" in bad.stderr
    assert "Maria Souza" in cli("list", "--tag", "vip").stdout

    report = cli("duplicates")
    assert report.returncode == 0 and "+5548991910234" in report.stdout and "1 Maria Souza, 2 Maria S." in report.stdout

    declined = cli("merge", "1", "2", input="n\n")
    assert declined.returncode == 1 and "messages" in declined.stdout and "email maria@example.com" in declined.stdout
    assert "Maria S." in cli("list").stdout
    merged = cli("merge", "1", "2", "--yes")
    assert merged.returncode == 0, merged.stderr
    assert "Contact 2 merged into contact 1." in merged.stdout
    listed = cli("list").stdout
    assert "Maria S." not in listed and "maria@example.com" in listed
    assert cli("duplicates").stdout.strip() == "No likely duplicates."
    missing = cli("merge", "1", "99", "--yes")
    assert missing.returncode == 1 and "99" in missing.stderr
