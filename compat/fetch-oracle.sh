#!/bin/sh
# Unpack Debian's real Postfix and Dovecot into DEST (default
# /var/cache/postdove-oracle), off the system paths, for the differential tests
# in compat/. Nothing is installed into /usr: the packages are fetched with
# `apt-get download` and unpacked with `dpkg -x`. Their shared-library
# dependencies (liblmdb0, libcdb1, ...) are ordinary Debian libraries that
# .ci/run installs.
set -eu
dest=${1:-${POSTDOVE_ORACLE:-/var/cache/postdove-oracle}}
if [ -x "$dest/root/usr/sbin/postconf" ] && [ -x "$dest/root/usr/sbin/dovecot" ] &&
	[ -x "$dest/root/usr/lib/dovecot/lmtp" ]; then
	exit 0
fi
mkdir -p "$dest/debs"
cd "$dest/debs"
rm -f ./*.deb
# _apt cannot write into a root-owned folder; download as root quietly.
apt-get -o APT::Sandbox::User=root download \
	postfix postfix-lmdb postfix-cdb postfix-pcre \
	dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd >/dev/null
rm -rf "$dest/root.new"
for deb in ./*.deb; do dpkg -x "$deb" "$dest/root.new"; done
# Postfix loads lmdb/cdb/pcre through dynamicmaps.cf in meta_directory.
mkdir -p "$dest/root.new/etc/postfix"
cp "$dest/root.new/usr/share/postfix/dynamicmaps.cf" "$dest/root.new/etc/postfix/"
rm -rf "$dest/root"
mv "$dest/root.new" "$dest/root"
