#!/usr/bin/env bash
# Install the Debian packages a make target needs, when they are missing (nothing else).
#   install-system.sh python   what `make demo` needs: a Python that can make a venv (Debian's python3-venv)
#   install-system.sh test     what `make test` adds: the real servers and tools the tests start
set -euo pipefail
what="${1:-test}"
python="${PYTHON:-python3}"
need=()
case "$what" in
  python)
    command -v "$python" >/dev/null || { echo "no $python: install Python 3.11 or newer" >&2; exit 2; }
    # Debian's python3 has no venv/ensurepip until python3-venv is installed (`python3 -m venv` then fails)
    "$python" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    ;;
  test)
    command -v prometheus >/dev/null || need+=(prometheus)
    command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
    command -v redis-server >/dev/null || need+=(redis-server)
    command -v docker-compose >/dev/null || need+=(docker-compose)
    command -v openssl >/dev/null || need+=(openssl)
    ;;
  *)
    echo "usage: $0 python|test" >&2; exit 2 ;;
esac
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing: ${need[*]} (not a Debian system: install them with your package manager)" >&2; exit 2
  fi
  echo "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
