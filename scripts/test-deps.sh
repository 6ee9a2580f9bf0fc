#!/bin/sh
# Installs the Debian packages the test suite uses, when some are missing.
# A no-op on a machine that has them; needs root (or sudo) otherwise.
#   chromium        browser test of the dashboard
#   prometheus      promtool: lints /metrics, the scrape config and alert rules;
#                   the fleet test's real Prometheus
#   prometheus-alertmanager   the fleet test's real Alertmanager; amtool
#   monitoring-plugins-basic   real Nagios plugins for the command probe
#   lintian dpkg-dev fakeroot binutils man-db systemd shellcheck   the .deb test
#   nodejs          syntax check of the generated polkit rule and the widget
#   openssl         a TLS fixture (self-signed s_server) for the tls reason; make
#                   test-openapi's certificate for the TLS variant
#   python3 python3-venv   the browser test's runner; the Flask blueprint's test
#                   (make test-flask: a venv with Flask and pytest from PyPI;
#                   make test-openapi: one with schemathesis and openapi-spec-validator)
#                   and the email tests' SMTP server (aiosmtpd from PyPI in target/smtp-venv,
#                   made by tests/smtp/venv.sh when the tests first need it)
#   nginx-light     make test-flask: docs/EMBEDDING.md's nginx location in front of the agent
#   zsh             the .deb test checks the zsh completion parses
#   systemd-container debootstrap   make test-systemd: a real systemd in systemd-nspawn
#                   (the .deb's units; the diagnosis against the real journal)
#   tzdata          /usr/share/zoneinfo: maintenance windows' time zones (the DST tests)
#   dbus-daemon     a real bus for the D-Bus client's test (probe/systemd_bus.rs)
set -eu
pkgs="chromium prometheus prometheus-alertmanager monitoring-plugins-basic lintian dpkg-dev fakeroot binutils man-db systemd shellcheck nodejs procps curl openssl python3 python3-venv nginx-light zsh systemd-container debootstrap tzdata dbus-daemon"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "test-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
