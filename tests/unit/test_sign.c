/* Standard Webhooks signing: the secret form, a known signature, constant-time comparison. */
#include "../check.h"
#include "gateway/sign.h"

int main(void)
{
    unsigned char key[GW_KEY_MAX];
    /* The example secret of the Standard Webhooks specification: 24 bytes. */
    CHECK_INT(gw_secret_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key), 24);
    CHECK_INT(gw_secret_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key), -1);
    CHECK_INT(gw_secret_decode("whsec_c2hvcnQ=", key), -1); /* 5 bytes */
    CHECK_INT(gw_secret_decode("whsec_not*base64!", key), -1);
    CHECK_INT(gw_secret_decode("whsec_", key), -1);
    /* Its published test vector. */
    char sig[128];
    int klen = gw_secret_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key);
    const char *body = "{\"test\": 2432232314}";
    CHECK_INT(gw_sign(key, (size_t)klen, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                      strlen(body), sig, sizeof(sig)),
              0);
    CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

    char gen[128];
    CHECK_INT(gw_secret_generate(gen, sizeof(gen)), 0);
    CHECK_INT(gw_secret_decode(gen, key), 32);
    char gen2[128];
    gw_secret_generate(gen2, sizeof(gen2));
    CHECK(strcmp(gen, gen2) != 0);

    char hex[65];
    CHECK_INT(gw_hmac_hex((const unsigned char *)"key", 3,
                          "The quick brown fox jumps over the lazy dog", 43, hex),
              0);
    CHECK_STR(hex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    /* An empty key, and one longer than SHA-256's block (hashed first), as Python's hmac. */
    CHECK_INT(gw_hmac_hex((const unsigned char *)"", 0, "abc", 3, hex), 0);
    CHECK_STR(hex, "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
    unsigned char longkey[100];
    memset(longkey, 'k', sizeof(longkey));
    CHECK_INT(gw_hmac_hex(longkey, sizeof(longkey), "abc", 3, hex), 0);
    CHECK_STR(hex, "b58b2b694fdba0dd76da3ebe99174f728d327560f36ece224e90867972479922");
    /* RFC 4231, test cases 2 and 6 (a 131-byte key), and keys at the block's edge (64, 65). */
    CHECK_INT(
        gw_hmac_hex((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, hex), 0);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    unsigned char aa[131];
    memset(aa, 0xaa, sizeof(aa));
    const char *tc6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    CHECK_INT(gw_hmac_hex(aa, sizeof(aa), tc6, strlen(tc6), hex), 0);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    unsigned char edge[65];
    memset(edge, 'b', sizeof(edge));
    CHECK_INT(gw_hmac_hex(edge, 64, "abc", 3, hex), 0);
    CHECK_STR(hex, "c056287fe2a4314e7eb7685ac850ce8fb65552dc6ae5fb86f5d6c25a507bca91");
    CHECK_INT(gw_hmac_hex(edge, 65, "abc", 3, hex), 0);
    CHECK_STR(hex, "05f3fde152209ab5ce28baccf89212cee698252c8c466ab30f11ac781223d071");
    const unsigned char raw[] = {0x00, 0xab, 0xff};
    gw_hex(raw, sizeof(raw), hex);
    CHECK_STR(hex, "00abff");
    CHECK(gw_const_eq("abc", "abc"));
    CHECK(!gw_const_eq("abc", "abd"));
    CHECK(!gw_const_eq("abc", "ab"));
    CHECK(!gw_const_eq("", "a"));
    CHECK_DONE();
}
