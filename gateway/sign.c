/* Signing with OpenSSL's HMAC (EVP_MAC) and base64 (EVP_EncodeBlock/EVP_DecodeBlock): no
 * hand-written cryptography. */
#include "sign.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_random(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int gw_secret_decode(const char *secret, unsigned char *key)
{
    if (strncmp(secret, "whsec_", 6) != 0)
        return -1;
    const char *b64 = secret + 6;
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > 4 * ((GW_KEY_MAX + 2) / 3))
        return -1;
    unsigned char buf[GW_KEY_MAX + 3];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (len >= 1 && b64[len - 1] == '=')
        n--;
    if (len >= 2 && b64[len - 2] == '=')
        n--;
    if (n < GW_KEY_MIN || n > GW_KEY_MAX)
        return -1;
    memcpy(key, buf, (size_t)n);
    return n;
}

int gw_secret_generate(char *out, size_t outlen)
{
    unsigned char key[32];
    char b64[64];
    if (outlen < 6 + 45 || gw_random(key, sizeof(key)) != 0)
        return -1;
    EVP_EncodeBlock((unsigned char *)b64, key, sizeof(key));
    snprintf(out, outlen, "whsec_%s", b64);
    return 0;
}

/* HMAC-SHA256 through one context set up once and copied per use: HMAC() looks the MAC and
 * the digest up by name on every call, which showed in the profile of each delivery. */
static EVP_MAC_CTX *hmac_template;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_setup(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (ctx != NULL && EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    hmac_template = ctx;
}

/* HMAC-SHA256 of the n parts together; 0 and 32 bytes in mac, or -1. */
static int hmac256(const unsigned char *key, size_t keylen, const void *const *parts,
                   const size_t *lens, int n, unsigned char mac[32])
{
    pthread_once(&hmac_once, hmac_setup);
    EVP_MAC_CTX *ctx = hmac_template ? EVP_MAC_CTX_dup(hmac_template) : NULL;
    size_t maclen = 0;
    int ok = ctx != NULL && EVP_MAC_init(ctx, key, keylen, NULL) == 1;
    for (int i = 0; ok && i < n; i++)
        ok = EVP_MAC_update(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_MAC_final(ctx, mac, &maclen, 32) == 1 && maclen == 32;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

int gw_sign(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
            const char *body, size_t body_len, char *out, size_t outlen)
{
    char head[160];
    int hlen = snprintf(head, sizeof(head), "%s.%lld.", id, timestamp);
    if (hlen < 0 || (size_t)hlen >= sizeof(head))
        return -1;
    unsigned char mac[32];
    const void *parts[] = {head, body};
    size_t lens[] = {(size_t)hlen, body_len};
    if (hmac256(key, keylen, parts, lens, 2, mac) != 0 || outlen < 3 + 4 * ((32 + 2) / 3) + 1)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, 32);
    return 0;
}

int gw_hmac_hex(const unsigned char *key, size_t keylen, const char *data, size_t len, char *out)
{
    unsigned char mac[32];
    const void *parts[] = {data};
    if (hmac256(key, keylen, parts, &len, 1, mac) != 0)
        return -1;
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

void gw_sha256(const void *data, size_t len, unsigned char *out)
{
    SHA256(data, len, out);
}

int gw_const_eq_n(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int gw_const_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    size_t n = la < lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}
