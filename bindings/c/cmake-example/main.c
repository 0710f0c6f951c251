/* peernet_hello: starts a node in a temporary data directory, prints its key and the
 * address it listens on, and checks that the header and the library agree. Built with
 * CMake's find_package(peernet) (see CMakeLists.txt). Exit status 0 on success. */
#include <peernet.h>

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    if (peernet_abi_version() != PEERNET_ABI_VERSION) {
        fprintf(stderr, "header ABI %d, library ABI %u\n", PEERNET_ABI_VERSION,
                (unsigned)peernet_abi_version());
        return 1;
    }
    char dir[] = "/tmp/peernet-hello-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    peernet_config *cfg = peernet_config_new(dir); /* used literally: no ~ expansion */
    peernet_node *node = NULL;
    if (!cfg || peernet_config_set_listen(cfg, "127.0.0.1:0") != PEERNET_OK ||
        peernet_node_start(cfg, &node) != PEERNET_OK) {
        fprintf(stderr, "start: %s\n", peernet_last_error());
        peernet_config_free(cfg);
        return 1;
    }
    peernet_config_free(cfg);
    peernet_key key;
    char hex[PEERNET_KEY_HEX_SIZE], addr[PEERNET_PEER_TEXT_SIZE];
    peernet_node_key(node, &key);
    peernet_key_to_hex(&key, hex);
    if (peernet_node_address(node, addr, sizeof addr) != PEERNET_OK) {
        fprintf(stderr, "address: %s\n", peernet_last_error());
        peernet_node_free(node);
        return 1;
    }
    printf("peernet %s\nkey %s\nlistening %s\n", peernet_version(), hex, addr);
    peernet_node_free(node);
    return 0;
}
