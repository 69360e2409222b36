"""`manage.py verifyaudit` and `auditcheckpoint`: an intact chain passes, every tampering is named."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.http import HttpResponse
from django.test import RequestFactory

from portal import audit
from portal.middleware import RequestIdMiddleware
from portal.models import AuditEvent
from tests import factories
from tests.support.audit import tampered

REPO_ROOT = Path(__file__).resolve().parents[2]


def verify(*args: str) -> tuple[int, str]:
    """Run verifyaudit; returns (exit status, message)."""
    try:
        call_command("verifyaudit", *args, stdout=open(os.devnull, "w"))  # noqa: SIM115
    except CommandError as error:
        return error.returncode, str(error)
    return 0, ""


def build_chain(alice, bob, web) -> None:
    """A realistic chain written through record(): catalog services, a web request, a denial."""
    image = factories.make_gold_image("ubuntu", actor=alice)
    draft = factories.make_gold_version(image, "1.0.0", actor=alice, publish=False)
    from builds import services

    services.gold_version_update(actor=alice, gold_version=draft, changelog="First cut")
    services.gold_version_publish(actor=alice, gold_version=draft, lookups=False)
    layer = factories.make_layer(web, image, "nginx", actor=bob)
    factories.make_layer_version(layer, "1.0.0", actor=bob)

    def view(request):
        audit.record("access.denied", actor=bob, obj=image, outcome="denied", changes={"reason": "no role"})
        audit.record("auth.login", actor=bob)
        return HttpResponse()

    RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.4"))
    for number in range(8):
        audit.record("policy.update", actor=alice, label=f"policy v{number}", department=web if number % 2 else None,
                     changes={"rules": [{"sizes": ["Standard_D2"]}, {"sizes": ["Standard_D2", f"Standard_D{number}"]}]})


@pytest.fixture
def chain(alice, bob, web, tmp_path):
    build_chain(alice, bob, web)
    checkpoint_file = tmp_path / "checkpoint.json"
    call_command("auditcheckpoint", "--output", str(checkpoint_file), stdout=open(os.devnull, "w"))  # noqa: SIM115
    return checkpoint_file


def test_an_intact_chain_passes(chain):
    assert verify() == (0, "")
    assert verify("--checkpoint", str(chain)) == (0, "")
    assert verify("--since", "5") == (0, "")


def test_it_prints_what_it_checked(chain, capsys):
    call_command("verifyaudit", "--checkpoint", str(chain))
    out = capsys.readouterr().out
    assert "audit trail intact" in out and "1 checkpoint file entry matched" in out


def test_an_empty_trail_passes(db):
    assert verify() == (0, "")


def test_it_names_a_modified_event(chain):
    with tampered():
        AuditEvent.objects.filter(id=4).update(object_label="something else")
        status, message = verify()
    assert status == 1
    assert "event #4" in message and "modified" in message


def test_it_names_the_event_after_a_deleted_one(chain):
    with tampered():
        AuditEvent.objects.filter(id=6).delete()
        status, message = verify()
    assert status == 1 and "#7" in message and "event #6 is missing" in message


def test_truncation_is_caught_only_with_a_checkpoint(chain, tmp_path):
    last = AuditEvent.objects.order_by("-id").first().id
    with tampered():
        AuditEvent.objects.filter(id__gt=last - 3).delete()
        assert verify("--no-stored-checkpoints")[0] == 0  # a shorter chain is still a chain
        status, message = verify("--no-stored-checkpoints", "--checkpoint", str(chain))
        stored_status, _ = verify()
    assert status == 1 and "truncated" in message and f"#{last - 2}" in message
    assert stored_status == 1  # the checkpoint kept in the database sees it too


def test_a_rewritten_chain_is_caught_by_an_exported_checkpoint(chain):
    """Somebody with write access edits an event and recomputes every later hash."""
    with tampered():
        AuditEvent.objects.filter(id=3).update(actor_name="mallory")
        prev = AuditEvent.objects.get(id=2).hash
        for event in AuditEvent.objects.filter(id__gte=3).order_by("id"):
            event.prev_hash = prev
            event.hash = audit.event_hash(event, prev)
            AuditEvent.objects.filter(id=event.id).update(prev_hash=event.prev_hash, hash=event.hash)
            prev = event.hash
        assert verify("--no-stored-checkpoints")[0] == 0
        status, message = verify("--no-stored-checkpoints", "--checkpoint", str(chain))
    assert status == 1 and "rewritten" in message


@pytest.mark.parametrize("content, problem", [
    ("", "empty"),
    ("{not json", "not JSON"),
    ('{"head_hash": "' + "a" * 64 + '"}', "last_event_id"),
    ('{"last_event_id": 3, "head_hash": "xyz"}', "head_hash"),
    ('{"last_event_id": -1, "head_hash": "' + "a" * 64 + '"}', "non-negative"),
    ("[]", "expected"),
])
def test_an_unreadable_checkpoint_exits_2(db, tmp_path, content, problem):
    path = tmp_path / "cp.json"
    path.write_text(content)
    status, message = verify("--checkpoint", str(path))
    assert status == 2 and problem in message


def test_a_missing_checkpoint_file_exits_2(db, tmp_path):
    status, message = verify("--checkpoint", str(tmp_path / "nope.json"))
    assert status == 2 and "cannot read" in message


def test_checkpoints_append_as_json_lines_and_all_are_checked(chain, tmp_path):
    lines = tmp_path / "checkpoints.jsonl"
    for _ in range(2):
        call_command("auditcheckpoint", "--output", str(lines), "--append", stdout=open(os.devnull, "w"))  # noqa: SIM115
    documents = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [d["format"] for d in documents] == [audit.CHECKPOINT_FORMAT] * 2
    assert documents[1]["last_event_id"] == documents[0]["last_event_id"] + 1  # the first one's audit.checkpoint event
    assert verify("--checkpoint", str(lines)) == (0, "")


def test_a_checkpoint_is_itself_an_audit_event(chain):
    event = AuditEvent.objects.order_by("-id").first()
    document = json.loads(chain.read_text())
    assert event.action == "audit.checkpoint"
    assert event.changes["last_event_id"] == [None, document["last_event_id"]]
    assert event.changes["head_hash"] == [None, document["head_hash"]]
    assert document["last_event_id"] == event.id - 1


def test_the_command_exits_with_the_documented_status(tmp_path):
    """Real exit codes, in a process of its own (a file database, so it can see what it wrote)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "GOLDSMITH_VAR_DIR": str(tmp_path)}

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    assert manage("migrate", "--no-input").returncode == 0
    assert manage("auditcheckpoint", "--output", str(tmp_path / "cp.json")).returncode == 0
    (tmp_path / "bad.json").write_text("{")
    assert manage("verifyaudit", "--checkpoint", str(tmp_path / "bad.json")).returncode == 2
    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite3") as database:
        database.execute("UPDATE portal_auditevent SET actor_name = 'mallory' WHERE id = 1")
    tampered_run = manage("verifyaudit")
    assert tampered_run.returncode == 1 and "event #1" in tampered_run.stderr


# --- The mutation test: many random tamperings, each one caught --------------------------------------

TEXT_FIELDS = ("actor_name", "user_agent", "action", "object_type", "object_id", "object_label", "request_id")


def _modify(rng: random.Random, event: AuditEvent) -> tuple[str, dict]:
    name = rng.choice([*TEXT_FIELDS, "at", "actor_id", "actor_ip", "department_id", "changes", "outcome",
                       "prev_hash", "hash", "id"])
    value = getattr(event, name)
    if name in TEXT_FIELDS:
        new = value + rng.choice([" ", "x", "\u00e9"]) if value and rng.random() < 0.5 else (value or "")[:-1] + "Z"
    elif name == "at":
        import datetime as dt

        new = value + dt.timedelta(microseconds=rng.choice([1, -1, 1000, -3_600_000_000]))
    elif name in ("actor_id", "department_id"):
        new = None if value else rng.randint(1, 5000)
    elif name == "actor_ip":
        new = "192.0.2.1" if value != "192.0.2.1" else None
    elif name == "changes":
        new = dict(value or {})
        key = rng.choice([*new, "injected"]) if new else "injected"
        new[key] = ["tampered", rng.random()]
    elif name == "outcome":
        new = rng.choice([o for o in AuditEvent.Outcome.values if o != value])
    elif name in ("prev_hash", "hash"):
        position = rng.randrange(64)
        new = value[:position] + ("0" if value[position] != "0" else "1") + value[position + 1:]
    else:  # id: move the event to a free number (a gap, or past the head)
        new = AuditEvent.objects.order_by("-id").first().id + rng.randint(1, 3)
    AuditEvent.objects.filter(id=event.id).update(**{name: new})
    if name == "id":  # the gap shows at the next event, or at the moved one when it was the last
        return f"move #{event.id} to #{new}", {event.id + 1, new}
    return f"modify {name} of #{event.id}", {event.id}


def _delete(rng, event):
    AuditEvent.objects.filter(id=event.id).delete()
    return f"delete #{event.id}", {event.id + 1, event.id}


def _insert(rng, event):
    """A forged event slipped in after `event`, linked to it, with a valid hash of its own.

    After the head this would be a well-formed append, which no unkeyed chain can tell from
    a real one (docs/audit.md, "What the chain proves"), so the forgery goes before the head.
    """
    if event.id == AuditEvent.objects.order_by("-id").first().id:
        event = AuditEvent.objects.get(id=event.id - 1)
    AuditEvent.objects.filter(id__gt=event.id).update(id=F("id") + 1_000_000)
    AuditEvent.objects.filter(id__gt=1_000_000).update(id=F("id") - 1_000_000 + 1)
    forged = AuditEvent(id=event.id + 1, at=event.at, actor_name="mallory", action="gold_version.publish",
                        object_type="goldimageversion", object_id="x", object_label="forged", changes={},
                        outcome="success", prev_hash=event.hash)
    forged.hash = audit.event_hash(forged, forged.prev_hash)
    forged.save(force_insert=True)
    return f"insert after #{event.id}", {event.id + 2}


def _insert_bad_link(rng, event):
    head = AuditEvent.objects.order_by("-id").first()
    forged = AuditEvent(id=head.id + rng.choice([1, 2]), at=head.at, actor_name="mallory", action="x.y",
                        changes={}, outcome="success", prev_hash=rng.choice([event.hash, audit.GENESIS]))
    forged.hash = audit.event_hash(forged, forged.prev_hash) if rng.random() < 0.5 else "f" * 64
    forged.save(force_insert=True)
    return f"append #{forged.id} with a bad link", {head.id + 1, forged.id}


def _reorder(rng, event):
    other = rng.choice(list(AuditEvent.objects.exclude(id=event.id).values_list("id", flat=True)))
    AuditEvent.objects.filter(id=event.id).update(id=-1)
    AuditEvent.objects.filter(id=other).update(id=event.id)
    AuditEvent.objects.filter(id=-1).update(id=other)
    return f"swap #{event.id} and #{other}", {min(event.id, other)}


def _truncate(rng, event, checkpoint_id):
    keep = rng.randrange(0, checkpoint_id)
    AuditEvent.objects.filter(id__gt=keep).delete()
    return f"truncate after #{keep}", {keep + 1}


def test_every_random_tampering_is_caught(chain):
    """Hundreds of random edits of a chain built through record(); verifyaudit names each."""
    seed = int(os.environ.get("AUDIT_MUTATION_SEED", "20261125"))
    rounds = int(os.environ.get("AUDIT_MUTATION_ROUNDS", "240"))
    rng = random.Random(seed)
    # The exported checkpoint is followed by its own audit.checkpoint event: cover that too, so
    # deleting the newest event counts as truncation below a checkpoint.
    checkpoint_id, head_hash = audit.head()
    chain.write_text(json.dumps(audit.Checkpoint(checkpoint_id, head_hash).as_dict()))
    ids = list(AuditEvent.objects.values_list("id", flat=True))
    kinds = {"modify": _modify, "delete": _delete, "insert": _insert, "insert_bad_link": _insert_bad_link,
             "reorder": _reorder, "truncate": None}
    seen = set()
    for round_number in range(rounds):
        kind = rng.choice(list(kinds))
        seen.add(kind)
        with tampered():
            event = AuditEvent.objects.get(id=rng.choice(ids))
            if kind == "truncate":
                what, expected = _truncate(rng, event, checkpoint_id)
            else:
                what, expected = kinds[kind](rng, event)
            status, message = verify("--no-stored-checkpoints", "--checkpoint", str(chain))
        assert status == 1, f"round {round_number} (seed {seed}): {what} was not caught"
        bad = int(message.split("#", 1)[1].split(":", 1)[0])
        assert bad in expected, f"round {round_number} (seed {seed}): {what} reported as #{bad}: {message}"
    assert seen == set(kinds)
    assert verify("--checkpoint", str(chain)) == (0, "")  # every tampering was rolled back
