"""The one rule of what a run sends, on real requests and a real state: the planner's jobs and skips, and
validate's forecast of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from importer.prepare.customers import Requests
from importer.send.client import encode_body
from importer.send.plan import Forecast, Planner, forecast, no_customers, state_department, state_to_read
from importer.send.pool import Outcome
from importer.send.progress import NoProgress
from importer.send.recorder import Recorder
from importer.send.state import STATE_COLUMNS, Saved, StateStore, payload_hash
from importer.status import Status
from tests.helpers import DV_HEADER, VIN_A, dv_row, requests_from

ANN = dv_row("100", first="Ann", last="Lee", cell="(310) 555-1234")
BO = dv_row("200", first="Bo", last="Day", email="bo@example.com")
CY = dv_row("300", first="Cy", last="Ng", vin=VIN_A, year="2003", make="Honda", model="Accord")
ED = dv_row("500", first="Ed", last="Fox", cell="(310) 555-2345")
#: nothing but the key for the server's matching to find the customer by
DI = dv_row("400", first="Di", last="Ox")


@dataclass
class Run:
    """A state, a recorder and a planner as a run has them, with what the recorder was told."""

    state: StateStore
    recorder: Recorder
    planner: Planner
    rows: list[tuple[tuple[int, ...], Outcome]] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)


def counts(told: Forecast) -> dict[str, int]:
    """The forecast's customers to create, update and leave unchanged, and its invalid rows."""
    return {"create": told.create, "update": told.update, "unchanged": told.unchanged, "invalid": told.invalid}


def new_run(path: Path) -> Run:
    state = StateStore(path, "dept")
    rows: list[tuple[tuple[int, ...], Outcome]] = []
    stops: list[str] = []
    recorder = Recorder(state, NoProgress(), lambda r, outcome, _changes: rows.append((r, outcome)),
                        lambda reason, code: stops.append(f"{code}: {reason}"))
    return Run(state, recorder, Planner(state, recorder), rows, stops)


def body_hash(requests: Requests, key: str) -> str:
    (request,) = [r for r in requests if r.key == key]
    return payload_hash(encode_body(request.body))


def fingerprint(requests: Requests, key: str) -> str:
    (group,) = [g for g in requests.groups() if g.key == key]
    return group.fingerprint


def save_as_sent(state: StateStore, requests: Requests) -> None:
    """What a run that sent these requests and had each saved leaves in the state."""
    state.record([(r.key, Saved(body_hash(requests, r.key), f"uuid-{r.key}", f"id-{r.key}",
                                fingerprint(requests, r.key)), False) for r in requests])


def file_of(write_csv: Callable[..., Path], *rows: list[str], name: str = "input.csv") -> Requests:
    return requests_from(write_csv([DV_HEADER, *rows], name))


def test_a_customer_with_the_saved_fingerprint_is_left_unchanged_without_its_body_being_built(tmp_path, write_csv):
    requests = file_of(write_csv, ANN, BO, ANN)
    run = new_run(tmp_path / "state.sqlite")
    # The saved body hash is none that any body has: were Ann's body built and compared, she would be updated.
    run.state.record([("100", Saved("no-body-has-this-hash", "uuid-100", "7", fingerprint(requests, "100")), False)])
    plan = run.planner.plan(requests, False, run.state.load)
    assert plan.unchanged.to_dict("records") == [{"key": "100", "customer_uuid": "uuid-100", "customer_id": "7"}]
    assert plan.unchanged_rows == 2
    jobs = list(plan.jobs)
    assert [job.key for job in jobs] == ["200"]
    assert run.rows == []  # the skipped customer's rows are the report's to fill, from plan.unchanged
    run.state.close()


def test_changed_rows_that_build_the_saved_body_are_unchanged_and_their_fingerprint_noted(tmp_path, write_csv):
    before = file_of(write_csv, ANN, BO, name="before.csv")
    run = new_run(tmp_path / "state.sqlite")
    save_as_sent(run.state, before)
    # Ann's row twice: other rows (another fingerprint), the same body (her one phone, once).
    after = file_of(write_csv, ANN, BO, ANN, name="after.csv")
    assert fingerprint(after, "100") != fingerprint(before, "100")
    assert body_hash(after, "100") == body_hash(before, "100")
    plan = run.planner.plan(after, False, run.state.load)
    assert plan.unchanged["key"].tolist() == ["200"]
    assert list(plan.jobs) == []
    assert run.rows == [((1, 3), Outcome("100", Status.UNCHANGED, "uuid-100", "id-100"))]
    run.recorder.write_pending()
    saved = run.state.load().loc["100"]
    assert list(saved) == ["uuid-100", "id-100", fingerprint(after, "100")]
    assert run.state.hashes(["100"]) == {"100": body_hash(before, "100")}
    # so the next run skips Ann on her fingerprint alone
    assert run.planner.plan(after, False, run.state.load).unchanged["key"].tolist() == ["100", "200"]
    run.state.close()


def test_a_changed_body_is_sent_with_the_known_uuid_and_an_unknown_customer_without_one(tmp_path, write_csv):
    before = file_of(write_csv, ANN, name="before.csv")
    run = new_run(tmp_path / "state.sqlite")
    save_as_sent(run.state, before)
    ann_with_email = dv_row("100", first="Ann", last="Lee", cell="(310) 555-1234", email="ann@example.com")
    after = file_of(write_csv, ann_with_email, ED, name="after.csv")
    plan = run.planner.plan(after, False, run.state.load)
    assert plan.unchanged.empty
    update, create = plan.jobs
    assert update.key == "100"
    assert update.body["customer"]["customerUuid"] == "uuid-100"
    assert update.body["customer"]["emails"] == [{"emailAddress": "ann@example.com", "label": "home"}]
    assert update.body_hash == body_hash(after, "100") != body_hash(before, "100")
    assert update.search_key is None
    assert update.identities == {"key:100", "+13105551234", "ann@example.com"}
    assert create.key == "500"
    assert "customerUuid" not in create.body["customer"]
    assert create.search_key is None  # a phone: the server's matching finds Ed again
    assert create.text == encode_body(create.body)
    # the recorder waits for both answers, with the fingerprints to save beside them
    assert run.recorder.rows_of == {"100": (1,), "500": (2,)}
    assert run.recorder.fingerprint_of == {"100": fingerprint(after, "100"), "500": fingerprint(after, "500")}
    assert run.state.journaled() == set()
    run.state.close()


def test_full_sends_every_customer_even_those_the_state_calls_unchanged(tmp_path, write_csv):
    requests = file_of(write_csv, ANN, BO, CY)
    run = new_run(tmp_path / "state.sqlite")
    save_as_sent(run.state, requests)
    assert run.planner.plan(requests, False, run.state.load).unchanged_rows == 3
    plan = run.planner.plan(requests, True, run.state.load)
    assert plan.unchanged.empty
    assert plan.unchanged_rows == 0
    jobs = list(plan.jobs)
    assert [(job.key, job.body["customer"]["customerUuid"]) for job in jobs] == [
        ("100", "uuid-100"), ("200", "uuid-200"), ("300", "uuid-300")]
    assert run.rows == []  # no same-body shortcut either
    run.state.close()


def test_a_key_only_customer_is_journaled_before_its_job_is_handed_out(tmp_path, write_csv):
    nameless_key = dv_row("", first="Fay", last="Gu")  # a derived key: nothing to search the server by
    requests = file_of(write_csv, ANN, DI, nameless_key)
    path = tmp_path / "state.sqlite"
    run = new_run(path)
    jobs = run.planner.plan(requests, False, run.state.load).jobs
    ann = next(jobs)
    assert (ann.search_key, run.state.journaled()) == (None, set())
    di = next(jobs)
    assert run.state.journaled() == {"400"}  # on disk before the caller could send it
    assert (di.key, di.search_key, di.maybe_saved) == ("400", "400", False)
    assert di.identities == {"key:400"}
    fay = next(jobs)
    assert fay.key.startswith("~Gu Fay #")
    assert fay.search_key is None
    assert run.state.journaled() == {"400"}
    assert list(jobs) == []
    run.state.close()
    # The run died with Di in flight: the next one knows an earlier send may have saved her.
    again = new_run(path)
    di_again = [job for job in again.planner.plan(requests, False, again.state.load).jobs if job.key == "400"]
    assert [(job.search_key, job.maybe_saved) for job in di_again] == [("400", True)]
    again.state.close()


def test_no_journal_no_request(tmp_path, write_csv):
    requests = file_of(write_csv, DI, ANN)
    run = new_run(tmp_path / "state.sqlite")
    jobs = run.planner.plan(requests, False, run.state.load).jobs
    run.state.close()  # the state can no longer be written
    assert list(jobs) == []
    assert len(run.stops) == 1
    assert run.stops[0].startswith("state_unwritable: the state file cannot be written (")


def test_the_forecast_and_the_planner_split_customers_alike(tmp_path, write_csv):
    path = tmp_path / "state.sqlite"
    before = file_of(write_csv, ANN, BO, CY, name="before.csv")
    run = new_run(path)
    save_as_sent(run.state, before)
    cy_moved = dv_row("300", first="Cy", last="Ng", vin=VIN_A, year="2003", make="Honda", model="Accord",
                      zip_code="02134")
    # Ann: same rows; Bo: another row, same body; Cy: a new body; Ed and Di: new customers.
    after = file_of(write_csv, ANN, BO, BO, cy_moved, ED, DI, name="after.csv")
    predicted = counts(forecast(after, run.state.load(), 4, run.state.bodies, run.state.hashes))
    plan = run.planner.plan(after, False, run.state.load)
    jobs = list(plan.jobs)
    planned = {"create": sum("customerUuid" not in job.body["customer"] for job in jobs),
               "update": sum("customerUuid" in job.body["customer"] for job in jobs),
               "unchanged": len(plan.unchanged) + sum(o.status == Status.UNCHANGED for _, o in run.rows),
               "invalid": 4}
    assert predicted == planned == {"create": 2, "update": 1, "unchanged": 2, "invalid": 4}
    assert [job.key for job in jobs] == ["300", "500", "400"]
    run.state.close()
    # validate reads the state without knowing its department, and forecasts the same
    assert state_department(path) == "dept"
    with state_to_read(path, None) as store:
        assert store is not None
        assert counts(forecast(after, store.load(), 4, store.bodies, store.hashes)) == predicted


def test_with_no_state_yet_every_customer_is_a_create(tmp_path, write_csv):
    requests = file_of(write_csv, ANN, BO, ANN)
    with state_to_read(tmp_path / "none.sqlite", "dept") as store:
        assert store is None
    nothing = no_customers()
    assert nothing.empty
    assert nothing.columns.tolist() == STATE_COLUMNS
    assert not (tmp_path / "none.sqlite").exists()
    told = forecast(requests, nothing, 0, lambda keys: {}, lambda keys: {})
    assert counts(told) == {"create": 2, "update": 0, "unchanged": 0, "invalid": 0}



def test_the_state_is_compared_a_part_at_a_time_each_customer_with_its_own(tmp_path, write_csv, monkeypatch):
    """Customers whose rows all changed (as after an upgrade): compared with the state in parts (here of two),
    each keeping its own uuid and id, the changed ones updated, whatever part they fall in."""
    import importer.send.plan as plan_module

    monkeypatch.setattr(plan_module, "COMPARED_AT_ONCE", 2)
    before = file_of(write_csv, ANN, BO, CY, ED, DI, name="before.csv")
    run = new_run(tmp_path / "state.sqlite")
    save_as_sent(run.state, before)
    # Every fingerprint other than the saved one; Cy's body changes too (another year).
    run.state.record([], noted=[(key, "old") for key in ("100", "200", "300", "400", "500")])
    cy = dv_row("300", first="Cy", last="Ng", vin=VIN_A, year="2004", make="Honda", model="Accord")
    after = file_of(write_csv, ANN, BO, cy, ED, DI, name="after.csv")
    plan = run.planner.plan(after, False, run.state.load)
    jobs = list(plan.jobs)
    assert [(job.key, job.body["customer"]["customerUuid"]) for job in jobs] == [("300", "uuid-300")]
    unchanged = {outcome.key: (outcome.customer_uuid, outcome.customer_id) for _, outcome in run.rows}
    assert unchanged == {key: (f"uuid-{key}", f"id-{key}") for key in ("100", "200", "400", "500")}
    run.state.close()
