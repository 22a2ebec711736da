#include "transport_aead.h"

// The functions of BoringSSL's <openssl/aead.h> used here, under the names swift-crypto's
// CCryptoBoringSSL gives them (BORINGSSL_PREFIX "CCryptoBoringSSL"). The types are opaque here.
struct evp_aead_st;
struct evp_aead_ctx_st;
extern const struct evp_aead_st *CCryptoBoringSSL_EVP_aead_chacha20_poly1305(void);
extern struct evp_aead_ctx_st *CCryptoBoringSSL_EVP_AEAD_CTX_new(const struct evp_aead_st *aead, const uint8_t *key,
                                                                 size_t key_len, size_t tag_len);
extern void CCryptoBoringSSL_EVP_AEAD_CTX_free(struct evp_aead_ctx_st *ctx);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_seal(const struct evp_aead_ctx_st *ctx, uint8_t *out, size_t *out_len,
                                              size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                              const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_open(const struct evp_aead_ctx_st *ctx, uint8_t *out, size_t *out_len,
                                              size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                              const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);

enum { KEY_LEN = 32, NONCE_LEN = 12, TAG_LEN = 16 };

ipop_transport_aead *ipop_transport_aead_new(const uint8_t key[32]) {
    return (ipop_transport_aead *)CCryptoBoringSSL_EVP_AEAD_CTX_new(
        CCryptoBoringSSL_EVP_aead_chacha20_poly1305(), key, KEY_LEN, TAG_LEN);
}

void ipop_transport_aead_free(ipop_transport_aead *ctx) {
    CCryptoBoringSSL_EVP_AEAD_CTX_free((struct evp_aead_ctx_st *)ctx);
}

int ipop_transport_aead_seal(const ipop_transport_aead *ctx, const uint8_t nonce[12],
                             uint8_t *buf, size_t plaintext_len) {
    size_t out_len = 0;
    // in == out: BoringSSL allows exact aliasing.
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_seal((const struct evp_aead_ctx_st *)ctx, buf, &out_len,
                                                plaintext_len + TAG_LEN, nonce, NONCE_LEN,
                                                buf, plaintext_len, NULL, 0);
    return ok == 1 && out_len == plaintext_len + TAG_LEN;
}

int ipop_transport_aead_open(const ipop_transport_aead *ctx, const uint8_t nonce[12],
                             uint8_t *buf, size_t sealed_len) {
    if (sealed_len < TAG_LEN) return 0;
    size_t out_len = 0;
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_open((const struct evp_aead_ctx_st *)ctx, buf, &out_len,
                                                sealed_len, nonce, NONCE_LEN, buf, sealed_len, NULL, 0);
    return ok == 1 && out_len == sealed_len - TAG_LEN;
}
