"""Schedules for every dealer of a dealers file, for engines that exist: a cron.d file, Kubernetes manifests.

Every schedule starts `mk-import run --dealers FILE --dealer NAME`, the line a person uses to rerun a night.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import shlex
import zoneinfo
from pathlib import Path
from typing import Any

import yaml

from importer import __version__
from importer.config import DEFAULT_MAX_CHANGED
from importer.errors import ConfigError
from importer.ops.dealers import Dealer, DealersFile, control_character
from importer.prepare.mapping import builtin_names

#: Seconds between the run's --max-duration and Kubernetes' activeDeadlineSeconds: the run stops taking
#: new work, finishes what is in flight and writes its reports (exit 3, resumable) before the pod is killed.
DEADLINE_MARGIN = 600
#: Where the pod finds the ConfigMap (the dealers file and the mapping files beside it).
CONFIG_MOUNT = "/etc/mk-import"
#: Peak memory of a 1M-row first import, and its CPU use (BENCHMARKS.md: 713 MB, 762 MB with a quarter of
#: the rows to fix, whose errors.xlsx a second process of about 110 MB writes beside the page; the client
#: takes about one core while sending). The limit leaves headroom (a workbook is held as CSV text while it is read);
#: no CPU limit, so a busy night is slowed, not killed.
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}


#: Kubernetes' names (RFC 1123): a label (a namespace) and a subdomain (a claim, a storage class).
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: An image reference, by the grammar of the distribution project (docker/distribution reference/regexp.go):
#: [domain[:port]/]path[:tag][@digest], path components lower case.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_IMAGE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")


def name_problem(value: Any, kind: str) -> str | None:
    """What is wrong with a Kubernetes name: `kind` "label" (63 characters) or "subdomain" (253)."""
    text = str(value)
    pattern, most = (_LABEL, 63) if kind == "label" else (_SUBDOMAIN, 253)
    if not pattern.fullmatch(text) or len(text) > most:
        what = "a DNS label" if kind == "label" else "a DNS subdomain"
        return (f"{text[:80]!r} is not {what} (RFC 1123: at most {most} lower-case letters, digits and dashes"
                f"{', dots between labels' if kind == 'subdomain' else ''}, starting and ending with a letter or "
                "digit)")
    return None


def image_problem(value: Any) -> str | None:
    text = str(value)
    first, slash, _ = text.partition("/")
    # A first part without a dot or a port is a path component (lower case), not a registry.
    registry = bool(slash) and ("." in first or ":" in first or first == "localhost" or first.startswith("["))
    if not _IMAGE.fullmatch(text) or len(text.split("@")[0].rsplit(":", 1)[0]) > 255 or (
            slash and not registry and not re.fullmatch(_COMPONENT, first)):
        return (f"{text[:120]!r} is not an image reference ([registry[:port]/]name[:tag][@digest], the name in "
                "lower case, no spaces)")
    return None


def time_zone_problem(value: Any) -> str | None:
    """What is wrong with a time zone name, by the time zone database (zoneinfo)."""
    text = str(value)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if not zoneinfo.available_timezones():
            return f"{text!r} cannot be checked: this machine has no time zone database (install tzdata)"
        return f"{text[:80]!r} is not a time zone of the tz database (such as America/Chicago)"
    return None


class _Dumper(yaml.SafeDumper):
    """Writes multi-line texts (the files in the ConfigMap) as readable literal blocks."""


def image_reference(image: str) -> str:
    """The image as given, with this mk-import's version as its tag where it names none: the tag is written
    in one place, the package's version, and the schedules run the mk-import that generated them."""
    name = image.rsplit("/", 1)[-1]
    return image if ":" in name or "@" in name else f"{image}:{__version__}"


def _text_block(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _text_block)


def _seconds(value: float) -> int:
    return max(1, int(value))


Options = list[tuple[str, str | None]]
#: The environment variables a dealer's proxy is carried in, as curl and pip read them.
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY")


def _run_options(dealer: Dealer, dealers_path: str) -> Options:
    """The arguments after the program name, the same for cron, Kubernetes and a person rerunning a night."""
    return [("--log-format", "json"), ("run", None), ("--dealers", dealers_path), ("--dealer", dealer.name),
            ("--max-duration", str(_seconds(dealer.max_duration)))]


def _words(options: Options) -> list[str]:
    return [word for option, value in options for word in (option, value) if word is not None]


# -- crontab -----------------------------------------------------------------------------------------
def crontab(dealers: DealersFile) -> str:
    """A cron.d file: one line per dealer, under flock per state file, logs to a file per dealer."""
    cron = dealers.cron
    user = str(cron.get("user", "mkimport"))
    command = str(cron.get("command", "/opt/mk-import/bin/mk-import"))
    log_dir = Path(str(cron.get("log_dir", "/var/log/mk-import")))
    metrics_dir = cron.get("metrics_dir")
    # Where the dealers file will be on the host, if not where it is now.
    dealers_file = str(cron.get("dealers_file") or dealers.path.resolve())
    missing = [d.name for d in dealers.dealers if d.env_file is None]
    if missing:
        raise ConfigError(f"{dealers.path}: credentials: env_file missing for {', '.join(missing)}: a host "
                          "reads the credentials from an env file")
    # The schedules are in the dealers' time zone: cron's own (cron.time_zone), else the one Kubernetes is given.
    time_zone = cron.get("time_zone") or dealers.kubernetes.get("time_zone")
    if time_zone and (found := time_zone_problem(time_zone)) is not None:
        key = "cron: time_zone" if cron.get("time_zone") else "kubernetes: time_zone"
        raise ConfigError(f"{dealers.path}: {key}: {found}")
    # flock and the shell's >> open their files before mk-import runs: the folders must be there.
    folders = {str(d.state.parent) for d in dealers.dealers} | {str(d.reports.parent) for d in dealers.dealers}
    folders |= {str(log_dir)} | ({str(metrics_dir)} if metrics_dir is not None else set())
    if cron.get("lock_dir"):
        folders.add(str(cron["lock_dir"]))
    lines = [
        f"# Generated by `mk-import deploy crontab {dealers.path.name}`: edit the dealers file, not this one.",
        "# Install as /etc/cron.d/mk-import. Each line runs one dealer under `flock -n` on its state file, so a",
        "# night that runs long is never joined by the next; --max-duration stops it cleanly (exit 3, resumable)",
        "# before the night ends. Output goes to one JSON log per dealer, so cron mails nothing: watch the",
        "# metrics and the alerts (`mk-import deploy alerts` prints them) instead.",
        f"# Create once, writable by {user}: " + " ".join(sorted(folders)),
        'MAILTO=""',
        *([f"CRON_TZ={time_zone}"] if time_zone else []),
    ]
    for dealer in dealers.dealers:
        options = _run_options(dealer, dealers_file)
        if metrics_dir is not None:
            options.append(("--metrics-file", str(Path(str(metrics_dir)) / f"mk-import-{dealer.name}.prom")))
        args = [*shlex.split(command), *_words(options)]
        if dealer.proxy:
            # The bare URL (the dealers file refuses credentials in it); also read by `run --dealers` itself.
            args = ["env", *(f"{name}={dealer.proxy}" for name in PROXY_VARIABLES), *args]
        lock = Path(str(cron["lock_dir"])) / f"{dealer.state.name}.lock" if cron.get("lock_dir") else \
            dealer.state.with_name(dealer.state.name + ".lock")
        line = shlex.join(["flock", "-n", str(lock), *args])
        log = shlex.quote(str(log_dir / f"{dealer.name}.log"))
        # `%` ends a cron command; `#` starts a comment for crontab tools (python-crontab, editors), which
        # would then see another command than cron runs. Nothing generated may carry either.
        for char, meaning in (("%", "cron reads as a line break"), ("#", "crontab tools read as a comment")):
            if char in line + log:
                raise ConfigError(f"{dealers.path}: dealer {dealer.name}: a path or the command holds {char!r}, "
                                  f"which {meaning}")
        lines.append(f"{dealer.schedule} {user} {line} >> {log} 2>&1")
    # The dealers file's texts are checked as it is read; this covers what comes from elsewhere (the file's
    # own name): a line break would end a comment or a job, and what follows would be a job of its own.
    for text in lines:
        if (found := control_character(text)) is not None:
            raise ConfigError(f"{str(dealers.path)!r}: a line of the crontab would hold a line break or control "
                              f"character ({found}): {text[:80]!r}")
    return "\n".join(lines) + "\n"


# -- kubernetes --------------------------------------------------------------------------------------
def _config_map_name(name: str) -> str:
    return f"{name}-config"


def _embedded(dealers: DealersFile) -> tuple[str, dict[str, str]]:
    """The dealers file as the pods read it (mapping files beside it, no host env files), and those files."""
    files: dict[str, str] = {}
    entries = []
    for dealer in dealers.dealers:
        mapping = dealer.mapping
        if mapping not in builtin_names():
            key = f"mapping-{Path(mapping).stem}.yaml"
            text = Path(mapping).read_text(encoding="utf-8")
            if files.get(key, text) != text:
                raise ConfigError(f"{dealers.path}: dealer {dealer.name}: mapping: two mapping files are named "
                                  f"{Path(mapping).name}; rename one")
            files[key] = text
            mapping = key
        ca_bundle = None
        if dealer.ca_bundle is not None:
            # CA certificates are public: the ConfigMap carries them beside the dealers file.
            ca_bundle = f"ca-{dealer.ca_bundle.stem}.pem"
            text = dealer.ca_bundle.read_text(encoding="utf-8")
            if files.get(ca_bundle, text) != text:
                raise ConfigError(f"{dealers.path}: dealer {dealer.name}: ca_bundle: two CA bundles are named "
                                  f"{dealer.ca_bundle.name}; rename one")
            files[ca_bundle] = text
        entry: dict[str, Any] = {
            "name": dealer.name, "department": dealer.department, "input": dealer.input, "mapping": mapping,
            "credentials": {"secret": dealer.secret}, "schedule": dealer.schedule, "rate": dealer.rate,
            "max_duration": _seconds(dealer.max_duration), "full": dealer.full}
        for key in ("max_age", "keep", "api_url", "proxy"):
            if getattr(dealer, key) is not None:
                entry[key] = getattr(dealer, key)
        if ca_bundle is not None:
            entry["ca_bundle"] = ca_bundle
        entry |= dealer.run_options()
        if dealer.max_changed != DEFAULT_MAX_CHANGED:  # the guard's limit travels with the entry it is set for
            entry["max_changed"] = dealer.max_changed
        entries.append(entry)
    state_dirs = {d.state.parent for d in dealers.dealers}
    reports_dirs = {d.reports.parent for d in dealers.dealers}
    document = {"defaults": {"state_dir": str(state_dirs.pop()), "reports": str(reports_dirs.pop()),
                             "stagger": 0},
                "dealers": entries}
    header = "# The dealers file as the CronJobs read it, generated by `mk-import deploy kubernetes`.\n"
    return header + yaml.safe_dump(document, sort_keys=False), files


def _proxy_env(dealer: Dealer) -> list[dict[str, Any]]:
    """The proxy's bare URL in the variables curl and pip read; its credentials, if the Secret has them, from
    the Secret (keys proxy_username, proxy_password), never in the manifest."""
    if not dealer.proxy:
        return []
    return [*({"name": name, "value": dealer.proxy} for name in PROXY_VARIABLES),
            *({"name": env, "valueFrom": {"secretKeyRef": {"name": dealer.secret, "key": key, "optional": True}}}
              for env, key in (("MK_PROXY_USERNAME", "proxy_username"), ("MK_PROXY_PASSWORD", "proxy_password")))]


def kubernetes(dealers: DealersFile) -> str:
    """Manifests: PersistentVolumeClaims for the state and the reports, a ConfigMap, one CronJob per dealer."""
    kube = dealers.kubernetes
    problems: list[str] = []  # every one is listed, then nothing is written

    def problem(key: str, text: str) -> None:
        problems.append(f"{dealers.path}: {key}: {text}")

    missing = [d.name for d in dealers.dealers if d.secret is None]
    if missing:
        problem("credentials", f"secret missing for {', '.join(missing)}: Kubernetes passes the credentials from "
                               "a Secret")
    if "image" not in kube:
        problem("kubernetes: image", "missing (the mk-import image to run)")
    elif (found := image_problem(kube["image"])) is not None:
        problem("kubernetes: image", found)
    if kube.get("namespace") and (found := name_problem(kube["namespace"], "label")) is not None:
        problem("kubernetes: namespace", found)
    if not isinstance(kube.get("namespace_exists", False), bool):
        problem("kubernetes: namespace_exists", f"expected true or false, got {kube['namespace_exists']!r}")
    if kube.get("storage_class") and (found := name_problem(kube["storage_class"], "subdomain")) is not None:
        problem("kubernetes: storage_class", found)
    if kube.get("time_zone") and (found := time_zone_problem(kube["time_zone"])) is not None:
        problem("kubernetes: time_zone", found)
    exports = kube.get("exports") or {}
    if not isinstance(exports, dict) or not exports.get("claim") or not exports.get("mount"):
        problem("kubernetes: exports", "expected claim: (the PersistentVolumeClaim the exports land on) and "
                                       "mount: (the path the inputs are under)")
        exports = {}
    else:
        if (found := name_problem(exports["claim"], "subdomain")) is not None:
            problem("kubernetes: exports: claim", found)
        if not str(exports["mount"]).startswith("/"):
            problem("kubernetes: exports: mount", f"{str(exports['mount'])!r} is not an absolute path")
    # Normalized first: /srv/exports/../../etc/shadow is not under /srv/exports.
    mount = os.path.normpath(str(exports.get("mount", "/"))).rstrip("/")
    outside = [d.name for d in dealers.dealers if exports and not os.path.normpath(d.input).startswith(mount + "/")]
    if outside:
        problem("input", f"not under kubernetes.exports.mount ({mount}) for {', '.join(outside)}")
    if len({d.state.parent for d in dealers.dealers}) > 1 or len({d.reports.parent for d in dealers.dealers}) > 1:
        problem("state_dir and reports", "must be the same for every dealer on Kubernetes")
    if problems:
        raise ConfigError("\n".join(problems))
    namespace = kube.get("namespace")
    base = "mk-import"
    embedded, files = _embedded(dealers)
    state_dir, reports_dir = dealers.dealers[0].state.parent, dealers.dealers[0].reports.parent

    def metadata(name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "mk-import"}}
        if namespace:
            meta["namespace"] = str(namespace)
        return meta

    def claim(name: str, size: str, mode: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"accessModes": [mode], "resources": {"requests": {"storage": size}}}
        if kube.get("storage_class"):
            spec["storageClassName"] = str(kube["storage_class"])
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(name), "spec": spec}

    # State: a volume per dealer, ReadWriteOnce. SQLite's write-ahead log needs a local-disk-like volume (not
    # NFS, which most ReadWriteMany volumes are), and only that dealer's pod mounts it, one night at a time.
    # Reports: plain files from every dealer, possibly at once on several nodes, so ReadWriteMany.
    # The namespace is created with the rest, unless the dealers file says it exists (made by someone else).
    created_namespace = [{"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": str(namespace), "labels": {"app.kubernetes.io/name": "mk-import"}}}
                         ] if namespace and not kube.get("namespace_exists") else []
    documents: list[dict[str, Any]] = [
        *created_namespace,
        *(claim(f"{base}-state-{d.name}", str(kube.get("state_storage", "1Gi")), "ReadWriteOnce")
          for d in dealers.dealers),
        claim(f"{base}-reports", str(kube.get("reports_storage", "10Gi")),
              str(kube.get("reports_access_mode", "ReadWriteMany"))),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(_config_map_name(base)),
         "data": {"dealers.yaml": embedded, **files}},
    ]
    uid = int(kube.get("run_as_user", 10001))
    for dealer in dealers.dealers:
        options = _run_options(dealer, f"{CONFIG_MOUNT}/dealers.yaml")
        if kube.get("pushgateway"):
            options.append(("--pushgateway", str(kube["pushgateway"])))
        # --option=value: one list item per option reads better in a manifest.
        args = [option if value is None else f"{option}={value}" for option, value in options]
        container = {
            "name": "mk-import",
            "image": image_reference(str(kube["image"])),
            "args": args,
            # The credentials come from the Secret at run time: the manifest names it, never holds them.
            "env": [{"name": env, "valueFrom": {"secretKeyRef": {"name": dealer.secret, "key": key}}}
                    for env, key in (("MK_USERNAME", "username"), ("MK_PASSWORD", "password"))] + _proxy_env(dealer),
            "resources": kube.get("resources") or RESOURCES,
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [
                {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                {"name": "state", "mountPath": str(state_dir)},
                {"name": "reports", "mountPath": str(reports_dir)},
                {"name": "exports", "mountPath": mount, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
        pod = {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [
                {"name": "config", "configMap": {"name": _config_map_name(base)}},
                {"name": "state", "persistentVolumeClaim": {"claimName": f"{base}-state-{dealer.name}"}},
                {"name": "reports", "persistentVolumeClaim": {"claimName": f"{base}-reports"}},
                {"name": "exports", "persistentVolumeClaim": {"claimName": str(exports["claim"]),
                                                              "readOnly": True}},
                {"name": "tmp", "emptyDir": {}},
            ],
        }
        spec: dict[str, Any] = {
            "schedule": dealer.schedule,
            "concurrencyPolicy": "Forbid",  # two nights never share a state file
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {"spec": {
                "backoffLimit": 0,  # the next night resumes; a retry inside the night would run past it
                "activeDeadlineSeconds": _seconds(dealer.max_duration) + DEADLINE_MARGIN,
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "mk-import",
                                                     "mk-import/dealer": dealer.name}},
                             "spec": pod}}},
        }
        if kube.get("time_zone"):
            spec["timeZone"] = str(kube["time_zone"])
        meta = metadata(f"{base}-{dealer.name}")
        meta["labels"]["mk-import/dealer"] = dealer.name
        documents.append({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": spec})
    header = (f"# Generated by `mk-import deploy kubernetes {dealers.path.name}`: edit the dealers file, not this "
              "one.\n# Create each dealer's Secret once, outside this file:\n"
              "#   kubectl create secret generic NAME --from-literal=username=... --from-literal=password=...\n")
    # allow_unicode: a mapping's `·` or `é` escaped would turn its literal block into one quoted line.
    return header + yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, explicit_start=True,
                                  allow_unicode=True)


def render(kind: str, dealers: DealersFile) -> str:
    """The schedule `kind` ("crontab" or "kubernetes") for every dealer."""
    return crontab(dealers) if kind == "crontab" else kubernetes(dealers)


#: The file name `deploy --out DIR` writes each kind to.
FILE_NAMES = {"crontab": "crontab", "kubernetes": "kubernetes.yaml", "alerts": "alerts.yaml"}


def alert_rules() -> str:
    """The Prometheus alert rules on the metrics every run reports, as shipped inside the package (a
    PrometheusRule; its `groups:` part is a plain rules file). deploy/alerts.yaml is the same file."""
    return importlib.resources.files("importer.ops").joinpath("alerts.yaml").read_text(encoding="utf-8")
