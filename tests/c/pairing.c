/* Pairing through the C API: included by test_peernet.c (like first_hour.c; helpers in suite.h). */

/* The inviter announces short codes to its discovery targets: loopback broadcast only. */
static peernet_node *start_loopback_inviter(const char *name) {
    peernet_config *c = test_config(name);
    if (!c) return NULL;
    int port = 40000 + (int)(getpid() % 20000);
    peernet_node *n = NULL;
    if (peernet_config_set_udp_discovery(c, (uint16_t)port, 1000, "127.255.255.255") != PEERNET_OK ||
        peernet_node_start(c, &n) != PEERNET_OK)
        n = NULL;
    peernet_config_free(c);
    return n;
}

static void test_pairing_by_ticket(void) {
    peernet_node *a = start_loopback_inviter("pair-a");
    peernet_node *b = start_node("pair-b");
    REQUIRE(a != NULL && b != NULL);
    peernet_key ka, kb;
    peernet_node_key(a, &ka);
    peernet_node_key(b, &kb);
    peernet_invitation *inv = NULL;
    CHECK_STATUS(peernet_invite(a, "alice", 0, false, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_invite(a, "alice", 60, false, &inv));
    REQUIRE(inv != NULL);
    const char *ticket = peernet_invite_ticket(inv);
    REQUIRE(ticket != NULL);
    CHECK(strncmp(ticket, "peernet1-", 9) == 0);
    CHECK(peernet_invite_code(inv) == NULL);
    CHECK(peernet_invite_ticket(NULL) == NULL);

    /* A typo: refused before any traffic, the last error names the group. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s", ticket);
    bad[9 + 3] = bad[9 + 3] == 'A' ? 'B' : 'A';
    peernet_paired pj;
    CHECK_STATUS(peernet_join(b, bad, "bob", 5000, &pj), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(peernet_last_error(), "group 1") != NULL);

    CHECK_OK(peernet_join(b, ticket, "bob", 5000, &pj));
    CHECK(memcmp(&pj.key, &ka, sizeof ka) == 0);
    CHECK(strcmp(pj.name, "alice") == 0);
    peernet_paired pi;
    CHECK_OK(peernet_invite_wait(inv, 5000, &pi));
    CHECK(memcmp(&pi.key, &kb, sizeof kb) == 0);
    CHECK(strcmp(pi.name, "bob") == 0);
    CHECK(strcmp(pi.sas, pj.sas) == 0);
    CHECK(strlen(pi.sas) > 0);
    CHECK(peernet_is_trusted(a, &kb));
    CHECK(peernet_is_trusted(b, &ka));
    /* Waiting again reports the same pairing (the listener is closed). */
    peernet_paired again;
    CHECK_OK(peernet_invite_wait(inv, 10, &again));
    CHECK(memcmp(&again.key, &kb, sizeof kb) == 0);
    peernet_invite_free(inv);
    peernet_invite_free(NULL);

    /* With a code (announced on loopback only): the code is there, and freeing the
     * invite closes it. */
    CHECK_OK(peernet_invite(a, NULL, 0, true, &inv));
    REQUIRE(inv != NULL);
    CHECK(peernet_invite_code(inv) != NULL);
    CHECK_STATUS(peernet_join(b, "7-copper-violn", NULL, 1000, &pj), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(peernet_last_error(), "word 2") != NULL);
    peernet_invite_free(inv);
    peernet_node_free(a);
    peernet_node_free(b);
}
