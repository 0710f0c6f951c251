# Builds and installs the C library (libpeernet.so / libpeernet.a), its headers
# (peernet.h, the C++17 wrapper peernet.hpp), its pkg-config file and its CMake package
# (lib/cmake/peernet: find_package(peernet), target peernet::peernet). See docs/c-api.md.
#
#   make                          # cargo build --release -p peernet-ffi
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make uninstall PREFIX=/usr/local
#
# CARGO_TARGET_DIR is honoured (default: target).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/peernet
CARGO ?= cargo
CARGO_TARGET_DIR ?= target
BUILD := $(CARGO_TARGET_DIR)/release

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
ABI := $(shell cat peernet-ffi/ABI_VERSION)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
REAL := libpeernet.so.$(VERSION)
SONAME := libpeernet.so.$(ABI)

.PHONY: all lib install uninstall

all: lib

lib:
	CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(CARGO) build --release -p peernet-ffi

install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(CMAKEDIR)
	install -m 0755 $(BUILD)/libpeernet.so $(DESTDIR)$(LIBDIR)/$(REAL)
	ln -sf $(REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpeernet.so
	install -m 0644 $(BUILD)/libpeernet.a $(DESTDIR)$(LIBDIR)/libpeernet.a
	install -m 0644 include/peernet.h $(DESTDIR)$(INCLUDEDIR)/peernet.h
	install -m 0644 include/peernet.hpp $(DESTDIR)$(INCLUDEDIR)/peernet.hpp
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    peernet-ffi/peernet.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/peernet.pc
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@ABI@|$(ABI)|g' \
	    peernet-ffi/cmake/peernetConfig.cmake.in > $(DESTDIR)$(CMAKEDIR)/peernetConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' \
	    peernet-ffi/cmake/peernetConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/peernetConfigVersion.cmake

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(REAL) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libpeernet.so $(DESTDIR)$(LIBDIR)/libpeernet.a \
	      $(DESTDIR)$(INCLUDEDIR)/peernet.h $(DESTDIR)$(INCLUDEDIR)/peernet.hpp \
	      $(DESTDIR)$(PKGCONFIGDIR)/peernet.pc \
	      $(DESTDIR)$(CMAKEDIR)/peernetConfig.cmake $(DESTDIR)$(CMAKEDIR)/peernetConfigVersion.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null
