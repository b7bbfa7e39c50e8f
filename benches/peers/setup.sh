#!/usr/bin/env bash
# Installs what the peer contenders need: libzmq (ZeroMQ, for the `zmq` crate), redis-server
# (Redis pub/sub), pkg-config, a C compiler, and valgrind (instruction counts).
# Idempotent: installs only what is missing. Never fails: when something cannot be
# installed it says why, and the harness skips that contender with the same reason.
set -u

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in libzmq3-dev redis-server pkg-config valgrind build-essential; do
    have_pkg "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: libzmq3-dev, redis-server, pkg-config, valgrind and a C compiler are installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get not found; cannot install ${missing[*]} (those contenders will be skipped)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "setup: not root and no password-less sudo; cannot install ${missing[*]} (those contenders will be skipped)"
        exit 0
    fi
fi

echo "setup: installing ${missing[*]}"
if ! $SUDO apt-get update -qq; then
    echo "setup: apt-get update failed; trying to install from the current package lists"
fi
for p in "${missing[@]}"; do
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$p" >/dev/null; then
        echo "setup: could not install $p (the contenders that need it will be skipped)"
    fi
done
exit 0
