#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download
# is not used). Installs it when absent; fails loudly when it cannot.
set -euo pipefail
chromium=${CONSOLE_TEST_CHROMIUM:-/usr/bin/chromium}
if [ -x "$chromium" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests (once; log: .local/chromium-install.log)"
  mkdir -p .local
  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      > .local/chromium-install.log 2>&1 && [ -x "$chromium" ]; then
    exit 0
  fi
  cat .local/chromium-install.log >&2
fi
echo "ERROR: no Chromium at $chromium, and it could not be installed here." >&2
echo "       Install Debian's chromium package (apt-get install chromium) or set" >&2
echo "       CONSOLE_TEST_CHROMIUM to a Chromium binary; the browser tests need it." >&2
exit 1
