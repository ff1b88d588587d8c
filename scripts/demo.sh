#!/usr/bin/env bash
# Bake a demo project (AWS checks skipped) and run `make data build train-local` in it.
# Online (a user's machine): the template's default base image and the real MNIST.
# Offline (OFFLINE=1, or OFFLINE=auto when the base image cannot be pulled): a locally
# built Debian base image and the digits set bundled with scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPLATE=$(pwd)
# Outside the template folder, as in the Makefile: cookiecutter copies that folder per bake.
VENV=${VENV:-$HOME/.cache/sm-template/venv}
DEMO_DIR=${DEMO_DIR:-$HOME/.cache/sm-template/demo}
OFFLINE=${OFFLINE:-auto}
HPARAMS=${HPARAMS:-epochs=3}
# The demo's makes are a user's, not sub-makes of `make demo`: none of its variables (a
# setting given on make's command line that a command does not read is refused).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
# This virtualenv has the project's requirements and the tools of this checkout (editable):
# its install markers count as made, so make installs nothing into it.
made=(-o "$VENV/.installed-tools" -o "$VENV/.installed-dev")
step=0
say() { step=$((step + 1)); printf '\n==> [%d/5] %s\n' "$step" "$*"; }

say "Docker engine"
bash tests/infra/docker-engine.sh start

say "Base image and data set"
default_base=$("$VENV/bin/python" -c 'import json,re; a=json.load(open("cookiecutter.json")); print(re.sub(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}", lambda m: a[m.group(1)], a["base_image"]))')
if [ "$OFFLINE" = auto ]; then
    if docker image inspect "$default_base" >/dev/null 2>&1 || timeout 180 docker pull "$default_base"; then
        OFFLINE=0
    else
        echo "could not pull $default_base: going offline (local Debian base image, digits data)"
        OFFLINE=1
    fi
fi
if [ "$OFFLINE" = 1 ]; then
    base=${BASE_IMAGE:-$(bash tests/infra/base-image.sh)}
    dataset=digits
else
    base=${BASE_IMAGE:-$default_base}
    dataset=mnist
fi
echo "base image: $base; data set: $dataset"

say "Bake the demo project into $DEMO_DIR"
mkdir -p "$DEMO_DIR"
"$VENV/bin/cookiecutter" --no-input --overwrite-if-exists -o "$DEMO_DIR" "$TEMPLATE" \
    project_name="Demo MNIST" aws_checks=skip
project="$DEMO_DIR/demo_mnist"

say "make data build (DATASET=$dataset)"
BASE_IMAGE="$base" make --no-print-directory "${made[@]}" -C "$project" data build VENV="$VENV" DATASET="$dataset"

say "make train-local HPARAMS=\"$HPARAMS\""
make --no-print-directory "${made[@]}" -C "$project" train-local VENV="$VENV" BASE_IMAGE="$base" HPARAMS="$HPARAMS"
echo
echo "Demo done. The project is $project; its model is $project/outputs/latest/model.tar.gz"
echo "Next: cd $project && make help"
