#!/usr/bin/env bash
# Installs the readi agent on a Debian-like host: binary, system user, directories with the right
# permissions, a config, a generated key-encryption key (as a systemd credential) and the unit.
# Idempotent: a re-run replaces the binary and unit and keeps the config, keys and data.
#
#   deploy/install.sh [--binary target/release/readi-agent] [--root /]      install or upgrade
#   deploy/install.sh --uninstall [--purge [--yes] [--discard-kek]] [--root /]
#       remove the binary and unit; --purge also removes config and data, after asking (or with
#       --yes), and moves the key-encryption key to /var/backups/readi/ unless --discard-kek: backups
#       of the data are unreadable without it.
#
# --root installs into a staging directory (packaging, tests); the system user and systemctl are then
# skipped and said so.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="/"
binary="$here/../target/release/readi-agent"
uninstall=0
purge=0
yes=0
discard_kek=0

while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --yes) yes=1; shift ;;
    --discard-kek) discard_kek=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

root="${root%/}"
bin_dir="$root/usr/local/bin"
etc="$root/etc/readi"
cred="$etc/credentials"
state="$root/var/lib/readi"
unit_dir="$root/etc/systemd/system"
doc_dir="$root/usr/share/doc/readi"
backups="$root/var/backups/readi"
real_root=0
[ -z "$root" ] && real_root=1

say() { echo "install.sh: $*"; }

owner() {
  # chown only on the real system, where the user exists.
  if [ "$real_root" = 1 ]; then chown "$@"; fi
}

if [ "$uninstall" = 1 ]; then
  if [ "$purge" = 1 ] && [ "$yes" = 0 ]; then
    # Purging is not undoable: ask a person, and refuse a script that did not say --yes.
    if [ -t 0 ]; then
      read -r -p "install.sh: remove $etc (config, keys) and $state (all data)? [y/N] " answer
      case "$answer" in y|Y|yes) ;; *) echo "install.sh: nothing removed" >&2; exit 1 ;; esac
    else
      echo "install.sh: --purge removes config, keys and all data: add --yes to confirm" >&2
      exit 2
    fi
  fi
  if [ "$real_root" = 1 ] && command -v systemctl >/dev/null; then
    systemctl disable --now readi-agent.service 2>/dev/null || true
  fi
  rm -f "$bin_dir/readi-agent" "$unit_dir/readi-agent.service"
  rm -rf "$doc_dir"
  if [ "$purge" = 1 ]; then
    if [ -e "$cred/kek" ] && [ "$discard_kek" = 0 ]; then
      install -d -m 0700 "$backups"
      kept="$backups/kek-$(date -u +%Y%m%dT%H%M%SZ)"
      mv "$cred/kek" "$kept"
      chmod 0600 "$kept"
      say "kept the key-encryption key in $kept (backups of the data need it; --discard-kek drops it)"
    fi
    rm -rf "$etc" "$state"
    if [ "$real_root" = 1 ] && id readi >/dev/null 2>&1; then userdel readi || true; fi
    say "removed the agent, its config, keys and data"
  else
    say "removed the agent; config and keys kept in $etc, data in $state (--purge removes them)"
  fi
  if [ "$real_root" = 1 ] && command -v systemctl >/dev/null; then systemctl daemon-reload || true; fi
  exit 0
fi

[ -x "$binary" ] || { echo "install.sh: no agent binary at $binary (cargo build --release -p readi-agent, or --binary)" >&2; exit 2; }

if [ "$real_root" = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: run as root (or use --root DIR to stage)" >&2; exit 2; }
  if ! id readi >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/readi --shell /usr/sbin/nologin --user-group readi
    say "created system user readi"
  fi
else
  say "staging into $root: system user and systemctl skipped"
fi

install -d -m 0755 "$bin_dir" "$unit_dir"
install -d -m 0750 "$etc"
install -d -m 0700 "$cred" "$state"
owner root:readi "$etc"
owner readi:readi "$state"

install -m 0755 "$binary" "$bin_dir/readi-agent"
install -m 0644 "$here/systemd/readi-agent.service" "$unit_dir/readi-agent.service"
# The unit's Documentation= points here.
install -d -m 0755 "$doc_dir"
install -m 0644 "$here/../README.md" "$doc_dir/README.md"
for doc in "$here"/../docs/*.md; do install -m 0644 "$doc" "$doc_dir/"; done

if [ ! -e "$etc/agent.toml" ]; then
  # The shipped example, with the production data directory and the KEK from the credential.
  sed -e 's|^data_dir = .*|data_dir = "/var/lib/readi"|' \
      -e 's|^# kek = { credential = "readi-kek" }|kek = { credential = "readi-kek" }|' \
      "$here/config/agent.toml" > "$etc/agent.toml"
  chmod 0640 "$etc/agent.toml"
  owner root:readi "$etc/agent.toml"
  say "wrote $etc/agent.toml (edit it, then: readi-agent validate --config /etc/readi/agent.toml)"
else
  say "kept the existing $etc/agent.toml"
fi

if [ ! -e "$cred/kek" ]; then
  # 32 random bytes as 64 hex characters; systemd hands it to the agent as a credential.
  umask 077
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$cred/kek"
  chmod 0600 "$cred/kek"
  say "generated a key-encryption key in $cred/kek: keep an escrowed copy (without it the data is unreadable)"
else
  say "kept the existing key-encryption key"
fi

if [ ! -e "$cred/enrollment-token" ]; then
  # The unit loads it as a credential; it is read only while the agent is not yet enrolled.
  install -m 0600 /dev/null "$cred/enrollment-token"
  say "put the controller's enrollment token in $cred/enrollment-token when you configure [controller]"
fi

if ! "$bin_dir/readi-agent" validate --config "$etc/agent.toml" >/dev/null; then
  echo "install.sh: $etc/agent.toml does not validate; fix it before starting the agent" >&2
  exit 1
fi

if [ "$real_root" = 1 ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  say "installed; start with: systemctl enable --now readi-agent"
else
  say "installed into $root"
fi
