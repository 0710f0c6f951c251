// cpp_echo: the C++17 wrapper in one process: two nodes on 127.0.0.1, a returning
// handler, a respond-later handler answered from another thread, a blocking call, an
// async call with a lambda, and error handling with exceptions and result<T>.
//
//   cpp_echo [DATA_ROOT]      (default: a fresh directory under /tmp)
#include <peernet.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

int main(int argc, char **argv) {
    std::string root = argc > 1 ? argv[1] : "";
    if (root.empty()) {
        char tmpl[] = "/tmp/peernet-cpp-XXXXXX";
        if (!mkdtemp(tmpl)) return 1;
        root = tmpl;
    }
    try {
        peernet::config cs(root + "/server"), cc(root + "/client");
        cs.listen("127.0.0.1:0").heartbeat(500, 3000);
        cc.listen("127.0.0.1:0").heartbeat(500, 3000).auto_connect(false).inline_callbacks(true);
        peernet::node server(cs), client(cc);
        server.trust(client.id(), "client");
        client.trust(server.id(), "server");

        server.expose("echo", [](const peernet::key &, std::string_view body) {
            return std::string(body);
        });
        server.expose("fail", [](const peernet::key &, std::string_view) -> std::string {
            throw std::runtime_error("no luck");
        });
        // Answer later, from a thread of our own.
        server.expose_async("slow", [](const peernet::key &, std::string_view body, peernet::responder r) {
            std::thread([r = std::move(r), text = std::string(body)]() mutable {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                r.respond("slow " + text);
            }).detach();
        });

        client.connect(server.id(), "127.0.0.1:" + std::to_string(server.port()));
        std::cout << "echo: " << client.call(server.id(), "echo", "hello") << "\n";
        server.wait_connected(client.id(), 5000);
        const std::string words = client.verification_words(server.id());
        if (words != server.verification_words(client.id())) {
            std::cerr << "verification words differ between the two ends\n";
            return 1;
        }
        std::cout << "verification words (both ends): " << words << "\n";
        std::cout << "slow: " << client.call(server.id(), "slow", "hello") << "\n";

        auto r = client.try_call(server.id(), "fail", "");
        std::cout << "fail: " << peernet_status_str(r.status()) << " / " << r.message() << "\n";
        if (r.status() != PEERNET_ERR_HANDLER_FAILED || r.message() != "no luck") return 1;

        try {
            client.call(server.id(), "missing", "");
            return 1;
        } catch (const peernet::error &e) {
            std::cout << "missing: " << e.what() << "\n";
            if (e.status() != PEERNET_ERR_NO_SUCH_HANDLER) return 1;
        }

        std::mutex mu;
        std::condition_variable cv;
        int done = 0, good = 0;
        for (int i = 0; i < 10; i++) {
            std::string msg = "async " + std::to_string(i);
            client.call_async(server.id(), "echo", msg, [&, msg](peernet::result<std::string> res) {
                std::lock_guard<std::mutex> g(mu);
                done++;
                if (res.ok() && *res == msg) good++;
                cv.notify_one();
            });
        }
        std::unique_lock<std::mutex> lk(mu);
        if (!cv.wait_for(lk, std::chrono::seconds(10), [&] { return done == 10; })) return 1;
        std::cout << "async: " << good << "/10 ok\n";
        if (good != 10) return 1;
        lk.unlock();
        for (const auto &p : client.peers())
            std::cout << "peer " << peernet::key(p.key).fingerprint() << " at " << p.address << "\n";
    } catch (const peernet::error &e) {
        std::cerr << "cpp_echo: " << e.what() << "\n";
        return 1;
    }
    if (argc <= 1) std::system(("rm -rf " + root).c_str());
    std::cout << "cpp_echo: ok\n";
    return 0;
}
