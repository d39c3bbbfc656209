# shellcheck shell=bash
# Shared by the scripts in this folder: source it, then call
#   install_missing_packages PACKAGE...
# which installs the Debian packages that are missing (as root; otherwise it
# only warns), running `apt-get update` once, only when something is missing.

install_missing_packages() {
  command -v dpkg >/dev/null || return 0
  local missing=() package
  for package in "$@"; do
    dpkg -s "$package" &>/dev/null || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  if ((EUID != 0)); then
    echo "warning: missing packages (run as root to install them): ${missing[*]}" >&2
    return 0
  fi
  echo "== installing ${missing[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}
