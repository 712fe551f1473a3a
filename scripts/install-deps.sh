#!/usr/bin/env bash
# Install the programs ClipSync needs from Debian, when they are missing.
#
#   scripts/install-deps.sh run    what the appliance itself runs: ffmpeg/ffprobe
#   scripts/install-deps.sh test   that, plus what the test suite runs for real:
#                                  Redis, PostgreSQL, ClickHouse, Chromium and
#                                  Ceph (a one-node cluster behind radosgw: real S3)
#
# The tests never skip when one is missing, they fail, so a fresh machine (CI's
# included) runs this first. It is idempotent: when everything is present it only
# looks, and returns at once.
#
# The tests start their own servers on free ports (tests/services.py), so the system
# services these packages ship are not needed. While this script installs, it forbids
# the packages to start them (policy-rc.d, see invoke-rc.d(8)): in a container without
# an init system a failing start would fail the install, and nothing needs them running.
set -euo pipefail

# The sbin directories: clickhouse-server lives in /usr/sbin, off a non-root PATH.
PATH="$PATH:/usr/sbin:/sbin"

have_lavapipe() {
    # Mesa's software Vulkan driver: the GPU filter graphs are tested on it.
    compgen -G '/usr/share/vulkan/icd.d/lvp_icd.*.json' >/dev/null
}

have_initdb() {
    # Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<version>/bin.
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

# "command package" pairs; ffmpeg provides both ffmpeg and ffprobe.
profile=${1:-test}
checks=(
    "ffmpeg ffmpeg"
    "ffprobe ffmpeg"
)
case $profile in
run) ;;
test)
    checks+=(
        "redis-server redis-server"
        "initdb postgresql"
        "clickhouse-server clickhouse-server"
        "chromium chromium"
        "lavapipe mesa-vulkan-drivers"
        # clamd, for the scan_clamav plugin's tests (no freshclam: they make their database).
        "clamd clamav-daemon"
        # Ceph: one monitor, one OSD and radosgw make the S3 store that checks
        # presigned signatures, expiry, privacy and CORS as AWS does.
        "ceph-mon ceph-mon"
        "ceph-osd ceph-osd"
        "radosgw radosgw"
        "radosgw-admin ceph-common"
        # nginx: the load balancer in front of two web hosts (tests/test_multi_host.py),
        # run unprivileged from a config and a temp folder of its own.
        "nginx nginx-light"
        # node and npm: the OpenID provider of the auth_oidc tests (tests/oidc_provider,
        # oidc-provider 9 wants node 20 or later: Debian 12's nodejs is 18, so a newer
        # one, e.g. NodeSource's, which bundles npm, may already be there).
        "node nodejs"
        "npm npm"
    )
    ;;
*)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac

found=()
missing=()
for check in "${checks[@]}"; do
    read -r cmd pkg <<<"$check"
    if [[ $cmd == initdb ]]; then
        have_initdb && present=1 || present=0
    elif [[ $cmd == lavapipe ]]; then
        have_lavapipe && present=1 || present=0
    else
        command -v "$cmd" >/dev/null && present=1 || present=0
    fi
    if ((present)); then
        found+=("$cmd")
    elif [[ " ${missing[*]} " != *" $pkg "* ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "$profile dependencies: all present (${found[*]})"
    exit 0
fi

if ((EUID != 0)); then
    echo "$profile dependencies missing: ${missing[*]}" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# Written by %s while it installs; removed when it ends.\nexit 101\n' \
        "$0" >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
echo "$profile dependencies: installed ${missing[*]}${found[*]:+; already present: ${found[*]}}"
