#!/usr/bin/env bash
# dnsmasq, the DNS server the DNS discovery tests run their own instances of
# (packages/testkit/src/DnsServer.ts): installed from Debian (dnsmasq-base, the
# program without a system service) when absent. CI runs this first.
#
#   bash scripts/dnsmasq.sh     install when absent; print the version
set -euo pipefail

# Debian installs it in /usr/sbin, which is not on every user's PATH.
bin="$(command -v dnsmasq || echo /usr/sbin/dnsmasq)"
if [ ! -x "$bin" ]; then
  echo "dnsmasq: installing dnsmasq-base (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null
  bin=/usr/sbin/dnsmasq
fi
echo "dnsmasq: $("$bin" --version | head -1) at $bin"
