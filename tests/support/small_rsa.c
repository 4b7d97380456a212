/* Loaded into the test suite's monero-wallet-rpc processes (LD_PRELOAD) only.
 *
 * monero-wallet-rpc 0.18 builds an SSL context for its (never used) Bitmessage client
 * each time a wallet is opened or created, and each such context gets a freshly
 * generated 4096-bit RSA key: 1.5 CPU-seconds per open, about a tenth of the whole
 * suite's CPU (newer releases build that client with SSL disabled). This generates the
 * key once per process, at the size asked for, and gives every later caller a copy of
 * it; nothing else about the wallet changes. OpenSSL's functions are looked up at run
 * time, so building it needs only a C compiler (no OpenSSL headers). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

typedef void BIGNUM;
typedef void RSA;

static int (*generate)(RSA *, int, BIGNUM *, void *);
static RSA *(*rsa_new)(void);
static void (*get0_key)(const RSA *, const BIGNUM **, const BIGNUM **, const BIGNUM **);
static void (*get0_factors)(const RSA *, const BIGNUM **, const BIGNUM **);
static void (*get0_crt)(const RSA *, const BIGNUM **, const BIGNUM **, const BIGNUM **);
static int (*set0_key)(RSA *, BIGNUM *, BIGNUM *, BIGNUM *);
static int (*set0_factors)(RSA *, BIGNUM *, BIGNUM *);
static int (*set0_crt)(RSA *, BIGNUM *, BIGNUM *, BIGNUM *);
static BIGNUM *(*bn_dup)(const BIGNUM *);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static RSA *kept;
static int kept_bits;

static int look_up(void)
{
    static int found = -1;  /* -1: not looked up yet; then 1 or 0, for good */
    if (found != -1)
        return found;
    rsa_new = dlsym(RTLD_NEXT, "RSA_new");
    get0_key = dlsym(RTLD_NEXT, "RSA_get0_key");
    get0_factors = dlsym(RTLD_NEXT, "RSA_get0_factors");
    get0_crt = dlsym(RTLD_NEXT, "RSA_get0_crt_params");
    set0_key = dlsym(RTLD_NEXT, "RSA_set0_key");
    set0_factors = dlsym(RTLD_NEXT, "RSA_set0_factors");
    set0_crt = dlsym(RTLD_NEXT, "RSA_set0_crt_params");
    bn_dup = dlsym(RTLD_NEXT, "BN_dup");
    generate = dlsym(RTLD_NEXT, "RSA_generate_key_ex");
    found = generate != NULL && rsa_new != NULL && get0_key != NULL
        && get0_factors != NULL && get0_crt != NULL && set0_key != NULL
        && set0_factors != NULL && set0_crt != NULL && bn_dup != NULL;
    return found;
}

static int copy(RSA *to, const RSA *from)
{
    const BIGNUM *n, *e, *d, *p, *q, *dp, *dq, *qi;
    BIGNUM *dup[8];
    int i;
    get0_key(from, &n, &e, &d);
    get0_factors(from, &p, &q);
    get0_crt(from, &dp, &dq, &qi);
    dup[0] = bn_dup(n); dup[1] = bn_dup(e); dup[2] = bn_dup(d); dup[3] = bn_dup(p);
    dup[4] = bn_dup(q); dup[5] = bn_dup(dp); dup[6] = bn_dup(dq); dup[7] = bn_dup(qi);
    for (i = 0; i < 8; i++)
        if (dup[i] == NULL)
            return 0;  /* out of memory: the caller fails as a failed generation would */
    return set0_key(to, dup[0], dup[1], dup[2]) && set0_factors(to, dup[3], dup[4])
        && set0_crt(to, dup[5], dup[6], dup[7]);
}

int RSA_generate_key_ex(RSA *rsa, int bits, BIGNUM *e, void *cb)
{
    int ok;
    pthread_mutex_lock(&lock);
    if (!look_up()) {
        pthread_mutex_unlock(&lock);
        return 0;
    }
    if (kept == NULL || kept_bits != bits) {
        RSA *fresh = rsa_new();
        if (fresh == NULL || !generate(fresh, bits, e, cb)) {
            pthread_mutex_unlock(&lock);
            return 0;
        }
        kept = fresh;  /* a former key of another size is left: at most a few */
        kept_bits = bits;
    }
    ok = copy(rsa, kept);
    pthread_mutex_unlock(&lock);
    return ok;
}
