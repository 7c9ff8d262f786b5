# postdove: build, test and install.
#   make            build every command into bin/
#   make test       gofmt/vet check and the whole suite (unit, compat/, tests/)
#   make install    install commands at CentOS 7's paths, stock configs where missing
#   make bench      benchmarks against Debian's Postfix (the compat/ oracle)

GO      ?= go
PREFIX  ?= /usr
DESTDIR ?=
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system

CMDS := $(notdir $(wildcard cmd/*))

# Where each command lives on CentOS 7 (postfix and dovecot packages).
SBIN_CMDS    := postfix postconf postmap postalias postqueue postsuper sendmail postdrop \
	postcat postkick postlock postlog postmulti dovecot
BIN_CMDS     := doveconf doveadm
LIBEXEC_CMDS := dovecot-lda
SENDMAIL_LINKS := newaliases mailq

# Every command Postfix's packages ship (Debian's postfix, CentOS 7's
# postfix and postfix-perl-scripts): install replaces those postdove
# provides and lists the others it leaves in place. CentOS 7 installs
# sendmail, mailq, newaliases and rmail as NAME.postfix behind the
# alternatives system; those of postdove's commands are replaced too.
POSTFIX_SBIN := postalias postcat postconf postdrop postfix postkick postlock postlog postmap \
	postmulti postqueue postsuper sendmail posttls-finger postfix-add-filter postfix-add-policy \
	postfix-collate qmqp-sink qmqp-source qshape rmail smtp-sink smtp-source
POSTFIX_BIN  := mailq newaliases rmail
POSTFIX_ALTERNATIVES := sbin/sendmail.postfix bin/mailq.postfix bin/newaliases.postfix bin/rmail.postfix
# Where Postfix keeps its daemons (CentOS, Debian); postdove's postfix
# binary runs its own.
POSTFIX_DAEMON_DIRS := libexec/postfix lib/postfix/sbin

.PHONY: all build test vet bench install clean

all: build

# Static binaries: sendmail and postdrop start for every message, and a
# static Go binary starts in about half the time of a dynamic one. Only the
# commands that check passwords through PAM (libpam) are built with cgo.
CGO_CMDS    := $(filter $(CMDS),doveadm dovecot)
STATIC_CMDS := $(filter-out $(CGO_CMDS),$(CMDS))

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ $(addprefix ./cmd/,$(STATIC_CMDS))
	$(if $(CGO_CMDS),CGO_ENABLED=1 $(GO) build -trimpath -o bin/ $(addprefix ./cmd/,$(CGO_CMDS)))
	@for l in $(SENDMAIL_LINKS); do [ -x bin/sendmail ] && ln -sf sendmail bin/$$l || true; done

vet:
	@out=$$(gofmt -l cmd pkg compat tests 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Unit tests run under the race detector; compat/ and tests/ drive the built
# binaries and the real Postfix, so the detector would only slow them down.
test: build vet
	$(GO) test -race -count=1 ./pkg/...
	$(GO) test -count=1 -timeout 40m ./compat/... ./tests/...

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x ./compat/...

install: build
	@set -e; \
	if [ -z "$(DESTDIR)" ]; then \
		getent group postdrop >/dev/null || groupadd -r postdrop; \
		if ! getent passwd postfix >/dev/null; then \
			if getent group postfix >/dev/null; then g="-g postfix"; else g="-U"; fi; \
			useradd -r $$g -d /var/spool/postfix -s /usr/sbin/nologin -c "Postfix mail system" postfix; \
		fi; \
		for u in dovecot dovenull; do getent passwd $$u >/dev/null && continue; \
			if getent group $$u >/dev/null; then g="-g $$u"; else g="-U"; fi; \
			useradd -r $$g -d /usr/libexec/dovecot -s /usr/sbin/nologin -c "Dovecot's $$u account" $$u; \
		done; \
		sgid="-g postdrop -m 2755"; \
	else sgid="-m 0755"; fi; \
	inst() { install -d "$(DESTDIR)$$2"; install $$3 "bin/$$1" "$(DESTDIR)$$2/$$1"; echo "installed $$2/$$1"; }; \
	for c in $(SBIN_CMDS); do [ -x bin/$$c ] || continue; \
		case $$c in postdrop|postqueue) inst $$c $(PREFIX)/sbin "$$sgid" ;; *) inst $$c $(PREFIX)/sbin "-m 0755" ;; esac; done; \
	for c in $(BIN_CMDS); do if [ -x bin/$$c ]; then inst $$c $(PREFIX)/bin "-m 0755"; fi; done; \
	for c in $(LIBEXEC_CMDS); do if [ -x bin/$$c ]; then inst $$c $(PREFIX)/libexec/dovecot "-m 0755"; fi; done; \
	if [ -x bin/sendmail ]; then install -d "$(DESTDIR)$(PREFIX)/bin"; \
		for l in $(SENDMAIL_LINKS); do ln -sfn ../sbin/sendmail "$(DESTDIR)$(PREFIX)/bin/$$l"; echo "linked $(PREFIX)/bin/$$l -> ../sbin/sendmail"; done; fi; \
	left=""; \
	for a in $(POSTFIX_ALTERNATIVES); do p="$(DESTDIR)$(PREFIX)/$$a"; c=$${a#*/}; c=$${c%.postfix}; \
		[ -e "$$p" ] || [ -L "$$p" ] || continue; \
		if [ -x bin/sendmail ] && [ "$$c" != rmail ]; then \
			case $$a in sbin/*) t=sendmail ;; *) t=../sbin/sendmail ;; esac; \
			ln -sfn $$t "$$p"; echo "linked $(PREFIX)/$$a -> $$t"; \
		else left="$$left $(PREFIX)/$$a"; fi; done; \
	for c in $(POSTFIX_SBIN); do p="$(DESTDIR)$(PREFIX)/sbin/$$c"; \
		if { [ -e "$$p" ] || [ -L "$$p" ]; } && [ ! -x bin/$$c ]; then left="$$left $(PREFIX)/sbin/$$c"; fi; done; \
	for c in $(POSTFIX_BIN); do p="$(DESTDIR)$(PREFIX)/bin/$$c"; \
		case " $(SENDMAIL_LINKS) " in *" $$c "*) [ -x bin/sendmail ] && continue ;; esac; \
		if [ -e "$$p" ] || [ -L "$$p" ]; then left="$$left $(PREFIX)/bin/$$c"; fi; done; \
	for d in $(POSTFIX_DAEMON_DIRS); do if [ -d "$(DESTDIR)$(PREFIX)/$$d" ]; then left="$$left $(PREFIX)/$$d/*"; fi; done; \
	if [ -n "$$left" ]; then echo "left in place (Postfix's, not provided by postdove):$$left"; fi; \
	cd etc && find . -type f | LC_ALL=C sort | sed 's|^\./||' | while read -r f; do \
		case $$f in systemd/*) dst="$(DESTDIR)$(UNITDIR)/$${f#systemd/}" ;; *) dst="$(DESTDIR)$(SYSCONFDIR)/$$f" ;; esac; \
		src="$$f"; \
		if [ "$$f" = pam.d/dovecot ] && [ ! -e "$(DESTDIR)$(SYSCONFDIR)/pam.d/password-auth" ] && [ -e "$(DESTDIR)$(SYSCONFDIR)/pam.d/common-auth" ]; then \
			src=$$(mktemp); sed -E 's/^(auth|account|session)( +)include( +)password-auth/@include common-\1/' "$$f" > "$$src"; fi; \
		if [ -e "$$dst" ] || [ -L "$$dst" ]; then echo "kept existing $$dst"; else install -D -m 0644 "$$src" "$$dst"; echo "installed $$dst"; fi; \
		[ "$$src" = "$$f" ] || rm -f "$$src"; \
	done; \
	c="$(DESTDIR)$(SYSCONFDIR)/pki/dovecot/certs/dovecot.pem"; k="$(DESTDIR)$(SYSCONFDIR)/pki/dovecot/private/dovecot.pem"; \
	if [ ! -e "$$c" ] && [ ! -e "$$k" ] && command -v openssl >/dev/null; then \
		install -d -m 0755 "$${c%/*}"; install -d -m 0700 "$${k%/*}"; \
		( umask 077; openssl req -new -x509 -nodes -days 365 -newkey rsa:2048 -subj "/OU=IMAP server/CN=$$(hostname -f 2>/dev/null || hostname)" \
			-keyout "$$k" -out "$$c" 2>/dev/null ); chmod 0600 "$$k"; chmod 0644 "$$c"; echo "created $$c and $$k (self-signed)"; \
	fi; \
	if [ -z "$(DESTDIR)" ] && [ -x $(PREFIX)/sbin/sendmail ]; then \
		if $(PREFIX)/bin/newaliases; then echo "ran newaliases"; else echo "warning: newaliases failed; fix /etc/aliases and run it again"; fi; \
	fi

clean:
	rm -rf bin
