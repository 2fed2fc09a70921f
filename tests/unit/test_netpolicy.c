/* Callback address policy: every reserved range refused, IPv4-carrying IPv6 forms judged by
 * their IPv4 address, allow-lists honoured. */
#include "../check.h"
#include "gateway/netpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static int allowed(const char *addr, const struct gw_cidr *allow, size_t n)
{
    struct sockaddr_storage ss = {0};
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        return -1;
    return gw_addr_allowed((struct sockaddr *)&ss, allow, n);
}

int main(void)
{
    const char *refused[] = {"127.0.0.1",
                             "127.255.0.9",
                             "10.1.2.3",
                             "172.16.0.1",
                             "172.31.255.255",
                             "192.168.1.1",
                             "169.254.169.254",
                             "100.64.0.1",
                             "0.0.0.0",
                             "224.0.0.1",
                             "255.255.255.255",
                             "198.18.0.1",
                             "::1",
                             "::",
                             "fe80::1",
                             "fc00::1",
                             "fd00:ec2::254",
                             "ff02::1",
                             "::ffff:127.0.0.1",
                             "::ffff:10.0.0.1",
                             "::ffff:169.254.169.254",
                             "64:ff9b::7f00:1",
                             "2002:7f00:1::1",
                             "::127.0.0.1",
                             "2001:db8::1",
                             "fec0::1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CHECK_INT(allowed(refused[i], NULL, 0), 0);
        if (allowed(refused[i], NULL, 0) != 0)
            fprintf(stderr, "  %s was allowed\n", refused[i]);
    }
    const char *public_addrs[] = {"93.184.216.34",  "8.8.8.8",    "2606:4700::1111",
                                  "::ffff:8.8.8.8", "172.32.0.1", "192.169.0.1"};
    for (size_t i = 0; i < sizeof(public_addrs) / sizeof(public_addrs[0]); i++)
        CHECK_INT(allowed(public_addrs[i], NULL, 0), 1);

    struct gw_cidr allow[2];
    CHECK_INT(gw_cidr_parse("127.0.0.0/8", &allow[0]), 0);
    CHECK_INT(gw_cidr_parse("fd00::/8", &allow[1]), 0);
    CHECK_INT(allowed("127.0.0.1", allow, 2), 1);
    CHECK_INT(allowed("::ffff:127.0.0.1", allow, 2), 1);
    CHECK_INT(allowed("fd12::1", allow, 2), 1);
    CHECK_INT(allowed("10.0.0.1", allow, 2), 0);
    CHECK_INT(allowed("::1", allow, 2), 0);
    struct gw_cidr c;
    CHECK_INT(gw_cidr_parse("10.0.0.0/33", &c), -1);
    CHECK_INT(gw_cidr_parse("10.0.0.0/", &c), -1);
    CHECK_INT(gw_cidr_parse("nonsense", &c), -1);
    CHECK_INT(gw_cidr_parse("192.168.1.7", &c), 0);
    CHECK_INT(c.prefix, 32);
    CHECK_INT(gw_cidr_parse("10.1.2.3/12", &c), 0);
    CHECK_INT(allowed("10.15.0.1", &c, 1), 1);
    CHECK_INT(allowed("10.16.0.1", &c, 1), 0);

    CHECK(gw_addr_is_loopback_text("127.0.0.1"));
    CHECK(gw_addr_is_loopback_text("::1"));
    CHECK(!gw_addr_is_loopback_text("0.0.0.0"));
    CHECK(!gw_addr_is_loopback_text("::"));
    CHECK(!gw_addr_is_loopback_text("192.168.0.1"));

    char err[512];
    CHECK_INT(gw_url_allowed("http://127.0.0.1:9/x", NULL, 0, err, sizeof(err)), 0);
    CHECK(strstr(err, "callback") != NULL && strstr(err, "127.0.0.1") != NULL);
    CHECK_INT(gw_url_allowed("http://localhost/x", NULL, 0, err, sizeof(err)), 0);
    CHECK_INT(gw_url_allowed("http://[::1]:80/", NULL, 0, err, sizeof(err)), 0);
    CHECK_INT(gw_url_allowed("http://127.0.0.1:9/x", allow, 1, err, sizeof(err)), 1);
    CHECK_DONE();
}
