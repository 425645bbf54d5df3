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
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  if docker compose -f "$SRC/deploy/compose.yaml" config -q; then echo "ok   docker compose config"
  else echo "FAIL docker compose config" >&2; fails=$((fails + 1)); fi
else
  echo "note: docker compose not available, compose file checked by yamllint only"
fi
echo "$fails failed"
((fails == 0))
