#ifndef IPOP_TRANSPORT_AEAD_H
#define IPOP_TRANSPORT_AEAD_H

#include <stddef.h>
#include <stdint.h>

// In-place ChaCha20-Poly1305 for the link transport, from the BoringSSL inside swift-crypto.
//
// swift-crypto's Swift API (`ChaChaPoly`) returns a fresh `Data` from every seal and open: about
// 18 heap allocations and two extra copies per forwarded frame. The cipher it calls is BoringSSL's
// EVP_AEAD ChaCha20-Poly1305, which swift-crypto links into every binary that uses it (its
// CCryptoBoringSSL target, every symbol prefixed `CCryptoBoringSSL_`). These wrappers call that same
// code on caller-owned memory; nothing here is a cipher of our own. transport_aead.c is the one place
// that knows the prefixed names: if swift-crypto ever renames them, the link fails, never silently.
// TransportCipherTests check the output against `ChaChaPoly` byte for byte.

typedef struct ipop_transport_aead ipop_transport_aead;

// A context for one 32-byte key (one direction of a session), or NULL if BoringSSL refused it.
// Allocates once; free with ipop_transport_aead_free.
ipop_transport_aead *ipop_transport_aead_new(const uint8_t key[32]);
void ipop_transport_aead_free(ipop_transport_aead *ctx);

// Seals buf[0 ..< plaintext_len] in place and writes the 16-byte tag after it
// (buf must hold plaintext_len + 16 bytes). Empty associated data. Returns 1 on success.
int ipop_transport_aead_seal(const ipop_transport_aead *ctx, const uint8_t nonce[12],
                             uint8_t *buf, size_t plaintext_len);

// Opens buf[0 ..< sealed_len] (ciphertext || tag) in place: on success returns 1 and the plaintext
// is buf[0 ..< sealed_len - 16]; on failure returns 0 and BoringSSL has zeroed that range.
int ipop_transport_aead_open(const ipop_transport_aead *ctx, const uint8_t nonce[12],
                             uint8_t *buf, size_t sealed_len);

#endif
