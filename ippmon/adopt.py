"""Acting on a job another client sent (`ippmon top`'s `R` and `a`, `ippmon adopt`): resubmit its
failed tasks through the controller, or adopt it into a run record of ippmon's own.

**Resubmit** (`Client.resubmit`, answered by `Hub.resubmit_task`; read in ipyparallel 9.2):
- The hub reads each request back from its task records (`header`, `content`, `buffers`) and
  sends it to the scheduler again as a new message with a new msg_id made by the *hub's* session
  (`<hub session>_<hub pid>_<n>`). The new header is the old one with only `msg_id` and `date`
  replaced, so its `session` and `username` are still the notebook's, and the new record's
  `client_uuid` is the notebook's session too (`save_task_request` takes it from the header).
- The new message's metadata is the hub session's default (empty): the task's `label` and its
  flags (`retries`, `timeout`, `after`/`follow` dependencies, `targets`) are NOT carried over.
- The request goes out on the hub's own socket to the scheduler, so the reply is routed back to
  the hub, which drops it (`Hub.__init__`: "ignore resubmit replies"); the hub still records the
  result from the scheduler's monitor. **The notebook that sent the task never gets the new
  result** (its AsyncResult keeps the old error); ippmon reads it from the hub's records.
- The old record gets `resubmitted = <new msg_id>` (after the reply), so a task is never sent
  twice by ippmon: one already resubmitted is skipped.
- All or nothing: one msg_id the hub no longer holds makes it refuse the whole request
  (`KeyError: No such msg(s)`), so the records are looked up first and only those found are sent.
  DictDB (the default) culls its oldest records, NoDB keeps none (it cannot resubmit at all).

Only tasks that raised (result status `error`, which includes a task lost with its engine) are
resubmitted. Aborted tasks are not: someone stopped them on purpose (`x`, or the client's
`abort()`), and sending them again would undo that.

**Adopt** writes `<runs-dir>/<run-id>/` as ippmon's own jobs do, for a job it did not send:
`run.json` (with `adopted`: the session, label and user it came from), `sent.jsonl` (one task
per msg_id, index 0..n-1 in the order the client sent them), no `results.jsonl` yet and no
inputs (nobody knows them but the notebook). `ippmon attach` then fetches every result from the
controller, as for a run whose ippmon was stopped; `resume` refuses (there is nothing to send).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon import __version__
from ippmon.clusterview import NODB
from ippmon.model import ClusterInfo, Shown
from ippmon.records import RunRecord, epoch, iso, new_run_id

if TYPE_CHECKING:
    from ippmon.jobspec import JobSpec

ADOPTED_ORIGIN = "adopted"  # run.json's spec.origin for an adopted run
ADOPTED_RESUME = (
    "{run}: adopted from a job another client sent; ippmon never had its inputs, so it cannot "
    "send them again (resubmit its failed tasks from `ippmon top` with R while the controller "
    "holds them)"
)
NODB_RESUBMIT = "the controller keeps no task records (NoDB), so it cannot resubmit tasks"
NODB_ADOPT = "the controller keeps no task records (NoDB): a job's msg_ids cannot be known"
CULLED = "the controller no longer holds their records (its task database dropped the oldest)"
ALREADY = "already resubmitted"
UNKNOWN_INPUT = Shown("unknown: sent by another client (adopted)")  # a task's input, shown
RESUBMITTED_MARK = " (resubmitted)"  # how `top` names the job a resubmit's tasks form


class AdoptError(Exception):
    """A job could not be adopted; `str()` is one line for people."""


@dataclass(frozen=True)
class Resubmitted:
    """What a resubmit of a job's failed tasks did."""

    sent: int  # tasks the controller sent again
    skipped: tuple[tuple[int, str], ...] = ()  # (how many, why) could not be
    new_ids: tuple[str, ...] = ()

    def text(self, title: str) -> str:
        """`resubmitted 3 failed tasks of fit; 2 could not be: <why>` (one line)."""
        s = "" if self.sent == 1 else "s"
        head = f"resubmitted {self.sent:,} failed task{s} of {title}"
        rest = [f"{n:,} could not be: {why}" for n, why in self.skipped]
        return "; ".join([head, *rest])


@dataclass(frozen=True)
class Adopted:
    run_id: str
    folder: str
    tasks: int
    title: str


# -- resubmit --------------------------------------------------------------------------------


def resubmit_failed(client: Any, msg_ids: Sequence[str], db: str) -> Resubmitted:
    """Resubmit those of `msg_ids` (a job's failed tasks) whose result was an error and that
    were not resubmitted before; say why any could not be. Never sends an empty request."""
    if not msg_ids:
        return Resubmitted(0)
    if db == NODB:
        return Resubmitted(0, ((len(msg_ids), NODB_RESUBMIT),))
    for tries_left in (1, 0):
        plan = plan_resubmit(msg_ids, _failed_records(client, msg_ids))
        if not plan.send:
            return Resubmitted(0, plan.skipped)
        try:
            ar = client.resubmit(list(plan.send), block=False)
        except Exception as exc:
            # culled between the look-up and the request: the hub refused them all; look again
            if tries_left and "No such msg" in str(exc):
                continue
            raise
        return Resubmitted(len(plan.send), plan.skipped, tuple(ar.msg_ids))
    raise AssertionError("unreachable")


def _failed_records(client: Any, msg_ids: Sequence[str]) -> list[dict[str, Any]]:
    return list(
        client.db_query(
            {"msg_id": {"$in": list(msg_ids)}},
            keys=["msg_id", "submitted", "result_metadata", "resubmitted"],
        )
    )


@dataclass(frozen=True)
class Plan:
    send: tuple[str, ...]
    skipped: tuple[tuple[int, str], ...]


def plan_resubmit(msg_ids: Sequence[str], records: Iterable[Mapping[str, Any]]) -> Plan:
    """Which of a job's failed tasks to resubmit, from their records: those with an error result
    not resubmitted before. Missing ones (and stubs without `submitted`: what the hub made of a
    task's output after culling its request) are culled; aborted ones are left aborted (and not
    mentioned: the confirm says so)."""
    found = {r["msg_id"]: r for r in records if r.get("submitted") is not None}
    send, culled, already = [], 0, 0
    for msg_id in msg_ids:
        rec = found.get(msg_id)
        if rec is None:
            culled += 1
        elif rec.get("resubmitted"):
            already += 1
        elif (rec.get("result_metadata") or {}).get("status") == "error":
            send.append(msg_id)
    skipped = tuple((n, why) for n, why in ((culled, CULLED), (already, ALREADY)) if n)
    return Plan(tuple(send), skipped)


def resubmitted_label(title: str) -> str:
    """The label `top` gives the job a resubmit's tasks form (the hub records them without a
    label): the original job's title, marked. Resubmitting that job again keeps the name."""
    return title if title.endswith(RESUBMITTED_MARK) else title + RESUBMITTED_MARK


# -- adopt -----------------------------------------------------------------------------------


def split_job_id(job_id: str) -> tuple[str, str | None]:
    """(session, label) of a job id (`session` or `session/label`; a session has no '/')."""
    session, slash, label = job_id.partition("/")
    return session, (label if slash else None)


def find_job(job_ids: Iterable[str], given: str) -> str:
    """The one job id `given` names: the id itself, a unique prefix of it, or the short form
    `ippmon status` prints (`e512d0b8/nb`: the start of the session, then the whole label).
    AdoptError (one line) when none or several match."""
    ids = list(job_ids)
    if given in ids:
        return given
    session, label = split_job_id(given)

    def short(job_id: str) -> bool:
        s, lab = split_job_id(job_id)
        return label is not None and lab == label and s.startswith(session)

    matches = [j for j in ids if j.startswith(given) or short(j)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AdoptError(f"no job '{given}' on this cluster (`ippmon status` lists them)")
    raise AdoptError(f"'{given}' matches {len(matches)} jobs; give more of its id")


def msg_id_number(msg_id: str) -> int | None:
    """The message counter a Jupyter session puts at the end of its msg_ids (`<s>_<pid>_<n>`)."""
    head, _, tail = msg_id.rpartition("_")
    return int(tail) if head and tail.isdigit() else None


def submission_order(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """msg_ids in the order their client sent them: by `submitted` (the client's clock, from
    each request's header), ties by the session's message counter. Records without `submitted`
    (stubs made from output) are left out."""
    keyed = []
    for rec in records:
        when = epoch(rec.get("submitted"))
        if when is None:
            continue
        number = msg_id_number(str(rec["msg_id"]))
        keyed.append((when, -1 if number is None else number, str(rec["msg_id"])))
    return [msg_id for _w, _n, msg_id in sorted(keyed)]


def job_records(
    records: Iterable[Mapping[str, Any]],
    job_id: str,
    grouped: Mapping[str, str],
) -> list[Mapping[str, Any]]:
    """Of one session's task records, the job's: its label's, less the tasks a resubmit made
    (the old record's `resubmitted` names them; `grouped` says which job `top` put the ones it
    resubmitted in, so such a job can be adopted too)."""
    records = list(records)
    _session, label = split_job_id(job_id)
    reruns = {r.get("resubmitted") for r in records} - {None}
    out = []
    for rec in records:
        msg_id = rec["msg_id"]
        if msg_id in grouped:
            if grouped[msg_id] == job_id:
                out.append(rec)
        elif msg_id not in reruns and rec.get("label") == label:
            out.append(rec)
    return out


def write_adopted(
    runs_dir: str | None,
    msg_ids: Sequence[str],
    *,
    title: str,
    session: str,
    label: str | None,
    user: str,
    cluster: ClusterInfo,
    first_seen: float | None,
    clock: Any = time.time,
) -> Adopted:
    """The run record of an adopted job (see the module docstring). Files are the owner's only
    (0600 in 0700 folders, as every run record); run.json is written last, so a run listed by
    `ippmon runs` has every msg_id."""
    if not msg_ids:
        raise AdoptError(f"{title}: the controller holds none of its tasks: nothing to adopt")
    now = clock()
    run_id = new_run_id(title, now)
    record = RunRecord.create(runs_dir, run_id)
    try:
        for index, msg_id in enumerate(msg_ids):
            record.append_sent({"attempt": 1, "msg_id": msg_id, "indices": [index]})
        record.write_run(
            {
                "run_id": run_id,
                "ippmon": __version__,
                "state": "detached",  # nobody records it until `ippmon attach`
                "job": title,
                "spec": {
                    "description": f"adopted: {user}'s job, sent by client session {session}",
                    "function": None,
                    "origin": ADOPTED_ORIGIN,
                    "inputs": "unknown (sent by another client)",
                    "kwargs": {},
                    "flags": {},
                },
                "inputs_count": len(msg_ids),
                "cluster": {
                    "profile": cluster.profile,
                    "cluster_id": cluster.cluster_id,
                    "location": cluster.location,
                    "engines": cluster.engines,
                },
                "spec_file": None,
                "created": iso(first_seen if first_seen is not None else now),
                "detached": iso(now),
                "updated": iso(now),
                "attempts": [{"attempt": 1, "n": len(msg_ids)}],
                "adopted": {
                    "session": session,
                    "label": label,
                    "user": user,
                    "at": iso(now),
                },
            }
        )
    finally:
        record.close()
    return Adopted(run_id, str(record.folder), len(msg_ids), title)


def is_adopted(meta: Mapping[str, Any]) -> bool:
    """Whether a run.json (checked by `records.read_meta`) is an adopted job's."""
    spec = meta.get("spec")
    return isinstance(meta.get("adopted"), dict) or (
        isinstance(spec, dict) and spec.get("origin") == ADOPTED_ORIGIN
    )


def adopted_folder(folder: Path) -> bool:
    from ippmon.records import read_meta

    return is_adopted(read_meta(folder))


def attach_hint(run_id: str, runs_dir: str | None) -> str:
    """What to type to follow an adopted run: `follow it with: ippmon attach <run-id>`."""
    import shlex

    parts = ["ippmon", "attach", run_id] + (["--runs-dir", runs_dir] if runs_dir else [])
    return f"follow it with: {shlex.join(parts)}"


def adopted_spec(meta: Mapping[str, Any]) -> JobSpec:
    """The JobSpec an adopted run is watched with: its name and description, no function, no
    inputs (`Job.submit` refuses to send it)."""
    from ippmon.jobspec import JobSpec

    given = meta.get("spec")
    spec: Mapping[str, Any] = given if isinstance(given, dict) else {}
    return JobSpec(
        name=str(meta["job"]),
        description=str(spec.get("description") or "adopted"),
        function="",
        origin=ADOPTED_ORIGIN,
        inputs_desc=str(spec.get("inputs") or "unknown"),
        n_inputs=int(meta["inputs_count"]),
        kwargs={},
    )
