#!/usr/bin/env bash
# Installs what the browser tests need from Debian's packages, skipping what is there:
# chromium and chromium-driver, and nginx and openssl for the hosted-demo test (nginx
# terminates TLS with a certificate the test makes). Uses sudo when not root.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -eq 0 ]; then
  echo "install-browser: chromium, chromedriver, nginx and openssl present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install-browser: installing ${need[*]} with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
# The packaged nginx starts a server of its own on port 80; the tests run their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  $sudo systemctl stop nginx || true
fi
$sudo pkill -x nginx 2>/dev/null || true
