# package.mk -- installing and packaging llmux: `make install`, `make deb`,
# `make rpm` and `make package-check`. Included by the Makefile.
#
#   make install DESTDIR=/tmp/root PREFIX=/usr SYSCONFDIR=/etc
#   make deb            .deb packages into $(BUILD)/deb/ (dpkg-buildpackage)
#   make rpm            .rpm packages into $(BUILD)/rpm/RPMS/ (rpmbuild)
#   make package-check  both, lintian, rpmlint, the units, the man pages,
#                       then the install test (tests/package/)
#
# Each installs the tools it needs first (tools/install-deps.sh --deb,
# --rpm, --package), as the build does its libraries.

PREFIX      ?= /usr
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBEXECDIR  ?= $(PREFIX)/libexec
SYSCONFDIR  ?= /etc
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/llmux
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
INSTALL     ?= install

VERSION    := $(shell sed -n 's/^\#define LLMUX_VERSION[^"]*"\(.*\)"/\1/p' common/version.h)
UNITS       = llmux-supervisord.service llmux-proxyd.service \
              llmux-proxyd.socket llmux-proxyd-admin.socket
MAN1        = llmuxctl.1 llmux-fakevllm.1 llmux-sim.1
MAN5        = llmux.yaml.5
MAN8        = llmux-supervisord.8 llmux-proxyd.8
DOCS        = README.md $(wildcard docs/*.md)
UI          = ui/index.html ui/app.js ui/style.css

.PHONY: install deb rpm dist package-check
install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(LIBEXECDIR)/llmux \
	    $(DESTDIR)$(SYSCONFDIR)/llmux $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 0755 $(BUILD)/bin/llmux-supervisord $(BUILD)/bin/llmux-proxyd \
	    $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0755 $(BUILD)/bin/llmuxctl $(BUILD)/bin/llmux-fakevllm \
	    $(BUILD)/bin/llmux-sim $(DESTDIR)$(BINDIR)/
	@# What the packages' install and removal scripts run.
	$(INSTALL) -m 0755 packaging/stop-models packaging/admin-token \
	    $(DESTDIR)$(LIBEXECDIR)/llmux/
	@# The configuration holds keys and tokens: root's alone. An existing
	@# one is never overwritten.
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/llmux/llmux.yaml ]; then \
	    $(INSTALL) -m 0640 etc/llmux.yaml $(DESTDIR)$(SYSCONFDIR)/llmux/llmux.yaml; fi
	for u in $(UNITS); do \
	    sed 's|/usr/sbin/|$(SBINDIR)/|g; s|/etc/llmux/|$(SYSCONFDIR)/llmux/|g' \
	        etc/$$u > $(DESTDIR)$(UNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	$(INSTALL) -m 0644 etc/llmux.sysusers $(DESTDIR)$(SYSUSERSDIR)/llmux.conf
	$(INSTALL) -m 0644 etc/llmux.tmpfiles $(DESTDIR)$(TMPFILESDIR)/llmux.conf
	$(INSTALL) -m 0644 etc/llmuxctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/llmuxctl
	@# The web page, which the proxy serves (its ui_dir).
	$(INSTALL) -d $(DESTDIR)$(DATADIR)/llmux/ui
	$(INSTALL) -m 0644 $(UI) $(DESTDIR)$(DATADIR)/llmux/ui/
	$(INSTALL) -m 0644 $(MAN1:%=docs/man/%) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(MAN5:%=docs/man/%) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(MAN8:%=docs/man/%) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 $(DOCS) LICENSE $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 etc/llmux.yaml $(DESTDIR)$(DOCDIR)/examples/llmux.yaml
	$(INSTALL) -m 0644 etc/llmux-supervisord-criu.conf $(DESTDIR)$(DOCDIR)/examples/criu.conf

# The source tarball both packages build from: the files git knows of
# (committed or not, less the ignored ones), else the whole tree.
# (Made every time: it is cheap, and what it holds has no simple list of
# prerequisites.)
dist:
	@packaging/mkdist.sh $(VERSION) $(BUILD)/llmux-$(VERSION).tar.gz

deb: dist
	@tools/install-deps.sh --deb
	@packaging/mkdeb.sh $(VERSION) $(BUILD)

rpm: dist
	@tools/install-deps.sh --rpm
	@packaging/mkrpm.sh $(VERSION) $(BUILD)

# The packages are prerequisites, so that `make deb rpm package-check`
# builds each once.
package-check: deb rpm
	@tools/install-deps.sh --package
	@packaging/check.sh $(VERSION) $(BUILD)
	@tests/package/test_install.sh $(BUILD)
