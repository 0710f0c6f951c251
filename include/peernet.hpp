/* peernet.hpp: a header-only C++17 RAII wrapper over the PeerNet C API (peernet.h).
 *
 *   peernet::config cfg("/tmp/me");
 *   cfg.listen("127.0.0.1:0").heartbeat(1000, 5000);
 *   peernet::node n(cfg);
 *   n.expose("echo", [](const peernet::key &from, std::string_view body) {
 *       return std::string(body);          // the reply; a thrown exception -> error reply
 *   });
 *   std::string reply = n.call(peer, "echo", "hi");   // throws peernet::error
 *
 * Errors are exceptions (peernet::error carries the status); functions whose failure is
 * expected in normal use (call, connect) also have try_* forms returning
 * peernet::result<T> (an expected-style value-or-status).
 * Handlers are std::function objects; they run on library threads (see peernet.h). */
#ifndef PEERNET_HPP
#define PEERNET_HPP

#include <peernet.h>

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace peernet {

/** A failed call: the status and the library's message. */
class error : public std::runtime_error {
public:
    error(peernet_status status, const std::string &what)
        : std::runtime_error(what), status_(status) {}
    peernet_status status() const noexcept { return status_; }

private:
    peernet_status status_;
};

namespace detail {
inline std::string describe(peernet_status s) {
    std::string msg = peernet_last_error();
    return std::string(peernet_status_str(s)) + (msg.empty() ? "" : ": " + msg);
}
inline void check(peernet_status s) {
    if (s != PEERNET_OK) throw error(s, describe(s));
}
inline std::string take(peernet_buffer &b) {
    std::string s(b.data ? reinterpret_cast<const char *>(b.data) : "", b.len);
    peernet_buffer_free(&b);
    return s;
}
} // namespace detail

/** Value or status (std::expected-style, C++17). */
template <class T> class result {
public:
    result(T value) : value_(std::move(value)), status_(PEERNET_OK) {}
    result(peernet_status s, std::string message) : status_(s), message_(std::move(message)) {}
    bool ok() const noexcept { return status_ == PEERNET_OK; }
    explicit operator bool() const noexcept { return ok(); }
    peernet_status status() const noexcept { return status_; }
    /** The error message (for HANDLER_FAILED: the handler's text). */
    const std::string &message() const noexcept { return message_; }
    /** The value; throws peernet::error if there is none. */
    T &value() {
        if (!ok()) throw error(status_, message_);
        return value_;
    }
    T &operator*() { return value(); }

private:
    T value_{};
    peernet_status status_;
    std::string message_;
};

/** A node's public key. */
struct key {
    peernet_key raw{};

    key() = default;
    explicit key(const peernet_key &k) : raw(k) {}
    static key from_hex(const std::string &hex) {
        key k;
        detail::check(peernet_key_from_hex(hex.c_str(), &k.raw));
        return k;
    }
    std::string hex() const {
        char out[PEERNET_KEY_HEX_SIZE];
        peernet_key_to_hex(&raw, out);
        return out;
    }
    std::string fingerprint() const {
        char out[PEERNET_FINGERPRINT_SIZE];
        peernet_key_fingerprint(&raw, out);
        return out;
    }
    bool operator==(const key &o) const { return std::memcmp(raw.bytes, o.raw.bytes, 32) == 0; }
    bool operator!=(const key &o) const { return !(*this == o); }
};

/** Node configuration (owns a peernet_config). Setters chain. */
class config {
public:
    explicit config(const std::string &data_dir) : c_(peernet_config_new(data_dir.c_str())) {
        if (!c_) throw error(PEERNET_ERR_INVALID_ARGUMENT, peernet_last_error());
    }
    config &listen(const std::string &addr) { return set(peernet_config_set_listen(get(), addr.c_str())); }
    config &heartbeat(uint32_t interval_ms, uint32_t timeout_ms) {
        return set(peernet_config_set_heartbeat(get(), interval_ms, timeout_ms));
    }
    config &udp_discovery(uint16_t port, uint32_t interval_ms, const char *broadcast = nullptr) {
        return set(peernet_config_set_udp_discovery(get(), port, interval_ms, broadcast));
    }
    config &network_monitor(uint32_t poll_ms) { return set(peernet_config_set_network_monitor(get(), poll_ms)); }
    config &max_frame(uint32_t bytes) { return set(peernet_config_set_max_frame(get(), bytes)); }
    config &handshake_timeout(uint32_t ms) { return set(peernet_config_set_handshake_timeout(get(), ms)); }
    config &auto_connect(bool on) { return set(peernet_config_set_auto_connect(get(), on)); }
    /// Callbacks run on the runtime thread without a hand-off: they must be quick.
    config &inline_callbacks(bool on) { return set(peernet_config_set_inline_callbacks(get(), on)); }
    peernet_config *get() const noexcept { return c_.get(); }

private:
    config &set(peernet_status s) {
        detail::check(s);
        return *this;
    }
    struct del {
        void operator()(peernet_config *c) const noexcept { peernet_config_free(c); }
    };
    std::unique_ptr<peernet_config, del> c_;
};

/** One pending call to answer (move-only). Answer it once, from any thread, now or
 * later; destroyed unanswered, it answers "handler did not answer". Empty for a send. */
class responder {
public:
    responder() = default;
    explicit responder(peernet_responder *r) : r_(r) {}
    responder(responder &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    responder &operator=(responder &&o) noexcept {
        if (this != &o) {
            abandon();
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    responder(const responder &) = delete;
    responder &operator=(const responder &) = delete;
    ~responder() { abandon(); }

    /** Whether this is a call still waiting for its answer. */
    bool pending() const noexcept { return r_ != nullptr; }
    void respond(std::string_view data) {
        detail::check(peernet_respond(release(), reinterpret_cast<const uint8_t *>(data.data()), data.size()));
    }
    void respond_error(const std::string &message) {
        detail::check(peernet_respond_error(release(), message.c_str()));
    }

private:
    peernet_responder *release() {
        if (!r_) throw error(PEERNET_ERR_INVALID_ARGUMENT, "responder already answered (or a send)");
        return std::exchange(r_, nullptr);
    }
    void abandon() noexcept {
        if (r_) peernet_respond_error(std::exchange(r_, nullptr), "handler did not answer");
    }
    peernet_responder *r_ = nullptr;
};

/** One event (from the callback or the poll queue). */
struct event {
    peernet_event_kind kind;
    bool has_key;
    key peer;
    std::string detail;
};

/** Handler that answers by returning (a thrown std::exception becomes an error reply). */
using handler = std::function<std::string(const key &from, std::string_view body)>;
/** Handler that answers through a responder (for sends, `r.pending()` is false). */
using async_handler = std::function<void(const key &from, std::string_view body, responder r)>;
/** RPC dispatcher. */
using rpc_handler = std::function<std::string(const key &from, const std::string &module,
                                              const std::string &function, std::string_view args)>;

/** A running node (owns a peernet_node; move-only). Destroying it stops it. */
class node {
public:
    explicit node(const config &cfg) {
        peernet_node *n = nullptr;
        detail::check(peernet_node_start(cfg.get(), &n));
        n_.reset(n);
    }
    peernet_node *get() const noexcept { return n_.get(); }

    key id() const {
        key k;
        peernet_node_key(get(), &k.raw);
        return k;
    }
    uint16_t port() const { return peernet_node_port(get()); }

    void trust(const key &k, const char *label = nullptr) { detail::check(peernet_trust(get(), &k.raw, label)); }
    void untrust(const key &k) { detail::check(peernet_untrust(get(), &k.raw)); }
    bool is_trusted(const key &k) const { return peernet_is_trusted(get(), &k.raw); }
    void grant_rpc(const key &k, bool allowed = true) { detail::check(peernet_grant_rpc(get(), &k.raw, allowed)); }

    /** Exposes a handler that returns its reply. */
    void expose(const std::string &name, handler h) {
        expose_async(name, [h = std::move(h)](const key &from, std::string_view body, responder r) {
            try {
                std::string reply = h(from, body);
                if (r.pending()) r.respond(reply);
            } catch (const std::exception &e) {
                if (r.pending()) r.respond_error(e.what());
            } catch (...) {
                if (r.pending()) r.respond_error("unknown C++ exception");
            }
        });
    }

    /** Exposes a handler that answers through its responder (possibly later). */
    void expose_async(const std::string &name, async_handler h) {
        auto *boxed = new async_handler(std::move(h));
        peernet_status s = peernet_expose(get(), name.c_str(), &node::trampoline, nullptr, boxed,
                                          &node::free_fn<async_handler>);
        if (s != PEERNET_OK) {
            delete boxed; /* on failure the library does not take it */
            detail::check(s);
        }
    }
    void revoke(const std::string &name) { detail::check(peernet_revoke(get(), name.c_str())); }

    void connect(const key &k, const std::string &addr, uint32_t timeout_ms = 5000) {
        detail::check(peernet_connect(get(), &k.raw, addr.c_str(), timeout_ms));
    }
    void disconnect(const key &k) { detail::check(peernet_disconnect(get(), &k.raw)); }
    bool is_connected(const key &k) const { return peernet_is_connected(get(), &k.raw); }
    /** Five words from the live connection's Noise handshake, the same on both ends
     *  (compare them with the other screen); throws when not connected. */
    std::string verification_words(const key &k) const {
        char buf[PEERNET_VERIFICATION_WORDS_SIZE];
        detail::check(peernet_verification_words(get(), &k.raw, buf, sizeof buf));
        return std::string(buf);
    }
    void wait_connected(const key &k, uint32_t timeout_ms) {
        detail::check(peernet_wait_connected(get(), &k.raw, timeout_ms));
    }

    result<std::string> try_call(const key &k, const std::string &name, std::string_view body,
                                 uint32_t timeout_ms = 10000) {
        peernet_buffer b{};
        peernet_status s = peernet_call(get(), &k.raw, name.c_str(),
                                        reinterpret_cast<const uint8_t *>(body.data()), body.size(),
                                        timeout_ms, &b);
        if (s == PEERNET_OK) return result<std::string>(detail::take(b));
        std::string msg = s == PEERNET_ERR_HANDLER_FAILED ? detail::take(b) : detail::describe(s);
        peernet_buffer_free(&b);
        return result<std::string>(s, msg);
    }
    std::string call(const key &k, const std::string &name, std::string_view body,
                     uint32_t timeout_ms = 10000) {
        auto r = try_call(k, name, body, timeout_ms);
        if (!r) throw error(r.status(), r.message());
        return std::move(*r);
    }

    /** Starts a call; `done` runs exactly once on a library thread. */
    void call_async(const key &k, const std::string &name, std::string_view body,
                    std::function<void(result<std::string>)> done, uint32_t timeout_ms = 10000) {
        auto *boxed = new std::function<void(result<std::string>)>(std::move(done));
        peernet_status s = peernet_call_async(get(), &k.raw, name.c_str(),
                                              reinterpret_cast<const uint8_t *>(body.data()),
                                              body.size(), timeout_ms, &node::call_done, boxed);
        if (s != PEERNET_OK) {
            delete boxed; /* done never runs */
            detail::check(s);
        }
    }

    void send(const key &k, const std::string &name, std::string_view body) {
        detail::check(peernet_send(get(), &k.raw, name.c_str(),
                                   reinterpret_cast<const uint8_t *>(body.data()), body.size()));
    }

    void set_rpc_dispatcher(rpc_handler h) {
        auto *boxed = new rpc_handler(std::move(h));
        peernet_status s = peernet_set_rpc_dispatcher(get(), &node::rpc_trampoline, boxed,
                                                      &node::free_fn<rpc_handler>);
        if (s != PEERNET_OK) {
            delete boxed;
            detail::check(s);
        }
    }
    std::string rpc_call(const key &k, const std::string &module, const std::string &function,
                         std::string_view args, uint32_t timeout_ms = 10000) {
        peernet_buffer b{};
        peernet_status s = peernet_rpc_call(get(), &k.raw, module.c_str(), function.c_str(),
                                            reinterpret_cast<const uint8_t *>(args.data()),
                                            args.size(), timeout_ms, &b);
        if (s != PEERNET_OK) {
            std::string msg = s == PEERNET_ERR_HANDLER_FAILED ? detail::take(b) : detail::describe(s);
            peernet_buffer_free(&b);
            throw error(s, msg);
        }
        return detail::take(b);
    }

    std::vector<peernet_peer_info> peers() const {
        peernet_peer_info *p = nullptr;
        size_t n = 0;
        detail::check(peernet_peers(get(), &p, &n));
        std::vector<peernet_peer_info> v(p, p + n);
        peernet_peers_free(p, n);
        return v;
    }
    void discovered(const key &k, const std::string &addr) {
        detail::check(peernet_discovered(get(), &k.raw, addr.c_str()));
    }
    void lost(const key &k) { detail::check(peernet_lost(get(), &k.raw)); }

    /** Sets the event callback (runs on the node's event thread, in order). */
    void on_event(std::function<void(const event &)> f) {
        auto *boxed = new std::function<void(const event &)>(std::move(f));
        peernet_status s = peernet_set_event_callback(get(), &node::event_trampoline, boxed,
                                                      &node::free_fn<std::function<void(const event &)>>);
        if (s != PEERNET_OK) {
            delete boxed;
            detail::check(s);
        }
    }
    /** Next event from the poll queue, or an empty result (TIMEOUT) after timeout_ms. */
    result<event> next_event(uint32_t timeout_ms) {
        peernet_event e;
        peernet_status s = peernet_next_event(get(), timeout_ms, &e);
        if (s != PEERNET_OK) return result<event>(s, detail::describe(s));
        return result<event>(event{e.kind, e.has_key, key(e.key), e.detail});
    }

private:
    template <class F> static void free_fn(void *p) { delete static_cast<F *>(p); }

    static void trampoline(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                           peernet_responder *r) {
        auto &h = *static_cast<async_handler *>(ud);
        responder resp(r);
        try {
            h(key(*from), std::string_view(reinterpret_cast<const char *>(body), len), std::move(resp));
        } catch (...) {
            /* never let an exception cross the C boundary; an unanswered responder
             * answers an error when destroyed */
        }
    }
    static void rpc_trampoline(void *ud, const peernet_key *from, const char *module,
                               const char *function, const uint8_t *args, size_t len,
                               peernet_responder *r) {
        auto &h = *static_cast<rpc_handler *>(ud);
        responder resp(r);
        try {
            resp.respond(h(key(*from), module, function,
                           std::string_view(reinterpret_cast<const char *>(args), len)));
        } catch (const std::exception &e) {
            if (resp.pending()) resp.respond_error(e.what());
        } catch (...) {
        }
    }
    static void event_trampoline(void *ud, peernet_event_kind kind, const peernet_key *k,
                                 const char *detail) {
        auto &f = *static_cast<std::function<void(const event &)> *>(ud);
        try {
            f(event{kind, k != nullptr, k ? key(*k) : key(), detail ? detail : ""});
        } catch (...) {
        }
    }
    static void call_done(void *ud, peernet_status s, const uint8_t *data, size_t len) {
        std::unique_ptr<std::function<void(result<std::string>)>> f(
            static_cast<std::function<void(result<std::string>)> *>(ud));
        std::string bytes(data ? reinterpret_cast<const char *>(data) : "", len);
        try {
            if (s == PEERNET_OK) (*f)(result<std::string>(std::move(bytes)));
            else (*f)(result<std::string>(s, s == PEERNET_ERR_HANDLER_FAILED ? bytes : detail::describe(s)));
        } catch (...) {
        }
    }

    struct del {
        void operator()(peernet_node *n) const noexcept { peernet_node_free(n); }
    };
    std::unique_ptr<peernet_node, del> n_;
};

/** Routes the library's log records to `f` (process-wide). */
inline void set_logger(void (*f)(void *, int, const char *, const char *), void *user_data, int max_level) {
    detail::check(peernet_set_logger(f, user_data, max_level));
}

} // namespace peernet

#endif
