#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# deploy_lint.sh - static checks of deploy/: yamllint over every YAML file
# (compose, Kubernetes, dev subscriptions), one document per Kubernetes
# object with apiVersion/kind/metadata.name, and `docker compose config`
# where a Docker CLI with compose is available. Needs no broker.
set -euo pipefail
SRC=${KB_SOURCE_DIR:?KB_SOURCE_DIR not set}
if ! command -v yamllint >/dev/null; then
  echo "SKIP: yamllint not installed (apt package yamllint)" >&2
  exit 77
fi
fails=0
mapfile -t files < <(find "$SRC/deploy" -name '*.yaml' -o -name '*.yml' | sort)
if yamllint -s -c "$SRC/deploy/.yamllint" "${files[@]}"; then
  echo "ok   yamllint: ${#files[@]} files"
else
  echo "FAIL yamllint" >&2; fails=$((fails + 1))
fi
# Every Kubernetes document names its kind and itself.
if python3 - "$SRC/deploy/k8s" <<'PY'
import sys, pathlib, yaml
bad = 0
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for doc in yaml.safe_load_all(f.read_text()):
        if doc is None:
            continue
        if not all(k in doc for k in ("apiVersion", "kind")) or (
                doc["kind"] != "Kustomization" and not doc.get("metadata", {}).get("name")):
            print(f"{f.name}: document without apiVersion/kind/metadata.name", file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
PY
then echo "ok   Kubernetes documents well-formed"
else echo "FAIL Kubernetes documents" >&2; fails=$((fails + 1)); fi
# The kustomization lists every manifest in the folder.
missing=$(for f in "$SRC"/deploy/k8s/*.yaml; do
  b=$(basename "$f"); [[ $b == kustomization.yaml ]] && continue
  grep -q -- "- $b\$" "$SRC/deploy/k8s/kustomization.yaml" || echo "$b"; done)
if [[ -z $missing ]]; then echo "ok   kustomization lists every manifest"
else echo "FAIL kustomization misses: $missing" >&2; fails=$((fails + 1)); fi
# Every command line in compose, Kubernetes and systemd names options its
# program has (checked against its --help), every router gets the subject key
# it refuses to start without, the Kadaster pod a fixed host name (its
# transactional id), and every Kafka client of the plaintext demo
# cluster in compose says allow.plaintext=true (else it refuses to start).
BIN=${1:?usage: $0 BIN_DIR}
if python3 - "$SRC/deploy" "$BIN" <<'PY'
import pathlib, re, shlex, subprocess, sys, yaml
deploy, bindir = pathlib.Path(sys.argv[1]), sys.argv[2]
PROGS = ("ketenbus", "ketenbus-gba", "ketenbus-svb", "ketenbus-kadaster")
cmds = []  # (where, argv, from compose)
bad = 0
def fail(msg):
    global bad
    print(msg, file=sys.stderr)
    bad += 1
compose = yaml.safe_load((deploy / "compose.yaml").read_text())
for name, svc in compose.get("services", {}).items():
    cmd, ep = svc.get("command"), svc.get("entrypoint") or ["/usr/local/bin/ketenbus"]
    if isinstance(cmd, list) and str(svc.get("image", "")).startswith("ketenbus"):
        cmds.append((f"compose.yaml {name}", [pathlib.Path(ep[0]).name] + cmd, True))
for f in sorted((deploy / "k8s").glob("*.yaml")):
    for doc in yaml.safe_load_all(f.read_text()):
        spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []):
            ep = c.get("command") or ["/usr/local/bin/ketenbus"]
            # A Kadaster round is a Kafka transaction whose id is derived from
            # --instance, else the host name: a pod's own name changes with
            # every new pod.
            if (pathlib.Path(ep[0]).name == "ketenbus-kadaster" and not spec.get("hostname")
                    and not any(a.startswith("--instance") for a in c.get("args", []))):
                fail(f"k8s/{f.name} {c['name']}: "
                     "the Kadaster pod needs --instance or a fixed hostname")
            cmds.append((f"k8s/{f.name} {c['name']}", [pathlib.Path(ep[0]).name] + c.get("args", []),
                         False))
for f in sorted((deploy / "systemd").glob("*.service")):
    m = re.search(r"^ExecStart=(.*)$", f.read_text().replace("\\\n", " "), re.M)
    argv = shlex.split(m.group(1))
    cmds.append((f"systemd/{f.name}", [pathlib.Path(argv[0]).name] + argv[1:], False))
for where, argv, in_compose in cmds:
    if argv[0] not in PROGS or len(argv) < 2:
        continue
    h = subprocess.run([f"{bindir}/{argv[0]}", argv[1], "--help"], capture_output=True, text=True)
    text = h.stdout + h.stderr
    for a in argv[2:]:
        if a.startswith("--") and not re.search(re.escape(a.split("=", 1)[0]) + r"(?![\w-])", text):
            fail(f"{where}: {argv[0]} {argv[1]} has no option {a.split('=', 1)[0]}")
    if argv[:2] == ["ketenbus", "route"] and not any(a.startswith("--subject-key-file") for a in argv):
        fail(f"{where}: the router needs --subject-key-file")
    if in_compose and "allow.plaintext=true" not in argv:
        fail(f"{where}: plaintext to the compose brokers needs -X allow.plaintext=true")
print(f"{len(cmds)} command lines checked", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
then echo "ok   deploy command lines match the programs' options"
else echo "FAIL deploy command lines" >&2; fails=$((fails + 1)); fi
# The image builds what CMakeLists.txt requires: jemalloc outside sanitizer builds.
if grep -q 'JEMALLOC REQUIRED' "$SRC/CMakeLists.txt" &&
  ! { grep -q libjemalloc-dev "$SRC/deploy/Dockerfile" && grep -q 'libjemalloc2' "$SRC/deploy/Dockerfile"; }; then
  echo "FAIL deploy/Dockerfile: jemalloc is required but not installed" >&2; fails=$((fails + 1))
else echo "ok   Dockerfile installs jemalloc (build and runtime)"; fi
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  if docker compose -f "$SRC/deploy/compose.yaml" config -q; then echo "ok   docker compose config"
  else echo "FAIL docker compose config" >&2; fails=$((fails + 1)); fi
else
  echo "note: docker compose not available, compose file checked by yamllint only"
fi
echo "$fails failed"
((fails == 0))
