#!/usr/bin/env bash
# Print the name of a Python base image the generated Dockerfile can build FROM.
# No registry can be pulled from on CI machines, so, in this order:
#   1. $BASE_IMAGE from the environment, as given;
#   2. the template's default base image, if it is already present locally;
#   3. a Debian bookworm image made here with debootstrap + `docker import`, cached
#      under a fixed tag so the next run reuses it.
# Progress goes to stderr; stdout is only the image name.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LOCAL_TAG=${LOCAL_BASE_TAG:-sm-template-test-base:bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -n "${BASE_IMAGE:-}" ]; then
    echo "$BASE_IMAGE"; exit 0
fi
# The default from cookiecutter.json, its {{ cookiecutter.x }} references filled in.
default_image=$(python3 - "$HERE/../../cookiecutter.json" <<'PY'
import json, re, sys
answers = json.load(open(sys.argv[1]))
print(re.sub(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}", lambda m: answers[m.group(1)], answers["base_image"]))
PY
)
for candidate in "$default_image" "$LOCAL_TAG"; do
    if timeout 30 docker image inspect "$candidate" >/dev/null 2>&1; then
        echo "base image: using $candidate (present locally)" >&2
        echo "$candidate"; exit 0
    fi
done

command -v debootstrap >/dev/null || {
    echo "installing debootstrap ..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
rootfs=$(mktemp -d /tmp/sm-template-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base image: debootstrap $SUITE into $rootfs (a few minutes) ..." >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    echo "error: debootstrap failed; last lines of $rootfs.log:" >&2; tail -n 20 "$rootfs.log" >&2; exit 1; }
# pip inside a build must trust what this host trusts (a proxy's CA, for one).
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/host-bundle.crt"
chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
# The image needs no package lists or caches: the Dockerfile runs apt-get update itself.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$LOCAL_TAG" >/dev/null
rm -f "$rootfs.log"
echo "base image: built $LOCAL_TAG" >&2
echo "$LOCAL_TAG"
