/* A Wicket filter in C: a request-signing check (world `wicket:plugin/filter@0.1.0`, built
 * with wit-bindgen's C bindings; build.sh is the recipe).
 *
 * A client signs each request: the header `X-Signature` (config `header`) carries the hex
 * HMAC-SHA256, under the shared `secret` (config, required), of the method and the path
 * joined by a newline ("GET\n/orders/7"; the query is not signed). A request whose signature
 * matches continues with the context key `signature.ok = "yes"`; any other is answered 401
 * `{"message": "invalid signature"}`. The comparison takes the same time wherever the
 * signatures differ.
 *
 * Three rules of wit-bindgen's C bindings every export here follows (break one and every
 * call fails):
 *   1. Borrowed handles an export receives (`req`, `ctx`, `resp`) must be dropped with
 *      `wicket_plugin_types_*_drop_borrow` before it returns, on every path: otherwise the
 *      call traps with "borrow handles still remain at the end of the call".
 *   2. What an export returns (error messages, describe's strings and lists) is freed by the
 *      bindings after the call: return heap copies (filter_string_dup), never literals.
 *   3. Strings the host returns to you (`ret` parameters) are yours: free them
 *      (filter_string_free).
 * And the module is a reactor (`-mexec-model=reactor`): no main, exports called many times. */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "hmac_sha256.h"
#include "wicket_config.h"

typedef struct {
    char *secret;
    char *header;
} settings;

/* Read once per instance (pooled instances keep it: the config does not change). */
static settings S;
static int loaded;

static filter_string_t borrowed(const char *s) {
    filter_string_t out;
    filter_string_set(&out, s); /* points at s: fine for arguments, never to return */
    return out;
}

static void log_info(const char *message) {
    filter_string_t m = borrowed(message);
    wicket_plugin_log_log(WICKET_PLUGIN_LOG_LEVEL_INFO, &m);
}

static char *copy(const char *s) {
    size_t n = strlen(s) + 1;
    char *out = malloc(n);
    if (out) memcpy(out, s, n);
    return out;
}

/* Parse and check the config; NULL when usable, else why not. */
static const char *load_settings(void) {
    if (loaded) return NULL;
    filter_string_t json;
    wicket_plugin_config_get(&json);
    wicket_config config;
    const char *err = wicket_config_parse(json.ptr, json.len, &config);
    filter_string_free(&json);
    static const char *const allowed[] = {"secret", "header", NULL};
    if (!err && wicket_config_unknown(&config, allowed)) {
        err = "unknown config key (the keys are `secret` and `header`)";
    }
    const char *secret = err ? NULL : wicket_config_get(&config, "secret");
    if (!err && (!secret || !*secret)) err = "`secret` is required: the HMAC-SHA256 key clients sign with";
    if (!err) {
        const char *header = wicket_config_get(&config, "header");
        S.secret = copy(secret);
        S.header = copy(header && *header ? header : "x-signature");
        loaded = S.secret && S.header;
        if (!loaded) err = "out of memory";
    }
    wicket_config_free(&config);
    return err;
}

bool exports_wicket_plugin_hooks_check_config(filter_string_t *err) {
    const char *why = load_settings();
    if (why) {
        filter_string_dup(err, why); /* freed by the bindings after the call */
        return false;
    }
    return true;
}

static int from_hex(uint8_t h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

/* Whether the request carries the right signature. */
static bool signed_correctly(exports_wicket_plugin_hooks_borrow_request_t req) {
    filter_string_t name = borrowed(S.header);
    filter_string_t given;
    if (!wicket_plugin_types_method_request_header(req, &name, &given)) return false;
    uint8_t claimed[SHA256_DIGEST];
    bool well_formed = given.len == 2 * SHA256_DIGEST;
    for (size_t i = 0; well_formed && i < SHA256_DIGEST; i++) {
        int hi = from_hex(given.ptr[2 * i]), lo = from_hex(given.ptr[2 * i + 1]);
        well_formed = hi >= 0 && lo >= 0;
        claimed[i] = (uint8_t)(hi << 4 | lo);
    }
    filter_string_free(&given);
    if (!well_formed) return false;

    filter_string_t method, path;
    wicket_plugin_types_method_request_method(req, &method);
    wicket_plugin_types_method_request_path(req, &path);
    const uint8_t newline = '\n';
    const uint8_t *parts[] = {method.ptr, &newline, path.ptr};
    const size_t lens[] = {method.len, 1, path.len};
    uint8_t expected[SHA256_DIGEST];
    hmac_sha256((const uint8_t *)S.secret, strlen(S.secret), parts, lens, 3, expected);
    filter_string_free(&method);
    filter_string_free(&path);

    /* Constant time: every byte is compared whatever the first difference. */
    uint8_t diff = 0;
    for (size_t i = 0; i < SHA256_DIGEST; i++) diff |= (uint8_t)(claimed[i] ^ expected[i]);
    return diff == 0;
}

bool exports_wicket_plugin_hooks_on_request(exports_wicket_plugin_hooks_borrow_request_t req,
                                            exports_wicket_plugin_hooks_borrow_context_t ctx,
                                            exports_wicket_plugin_hooks_action_t *ret,
                                            exports_wicket_plugin_hooks_error_t *err) {
    bool ok = load_settings() == NULL && signed_correctly(req);
    if (ok) {
        filter_string_t key = borrowed("signature.ok"), value = borrowed("yes");
        wicket_plugin_types_method_context_set(ctx, &key, &value);
        ret->tag = EXPORTS_WICKET_PLUGIN_HOOKS_ACTION_CONTINUE;
    } else {
        log_info("c-filter: refused a request without a valid signature");
        err->status = 401;
        filter_string_dup(&err->message, "invalid signature");
    }
    /* Rule 1: drop the borrows, on every path. */
    wicket_plugin_types_request_drop_borrow(req);
    wicket_plugin_types_context_drop_borrow(ctx);
    return ok;
}

bool exports_wicket_plugin_hooks_on_response(exports_wicket_plugin_hooks_borrow_request_t req,
                                             exports_wicket_plugin_hooks_borrow_response_t resp,
                                             exports_wicket_plugin_hooks_borrow_context_t ctx,
                                             exports_wicket_plugin_hooks_error_t *err) {
    /* Never called (plan says so), but a world's exports all exist. */
    wicket_plugin_types_request_drop_borrow(req);
    wicket_plugin_types_response_drop_borrow(resp);
    wicket_plugin_types_context_drop_borrow(ctx);
    return true;
}

static wicket_plugin_description_config_key_t key(const char *name, bool required, const char *doc) {
    wicket_plugin_description_config_key_t k;
    filter_string_dup(&k.name, name);
    k.kind = WICKET_PLUGIN_DESCRIPTION_VALUE_KIND_STRING;
    k.required = required;
    filter_string_dup(&k.doc, doc);
    return k;
}

void exports_filter_describe(filter_description_t *ret) {
    filter_string_dup(&ret->summary, "checks an HMAC-SHA256 signature of method and path (C)");
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
    wicket_plugin_description_config_key_t *keys = malloc(2 * sizeof *keys);
    if (!keys) abort();
    keys[0] = key("secret", true, "the HMAC-SHA256 key clients sign with");
    keys[1] = key("header", false, "the request header carrying the hex signature, default x-signature");
    ret->config_keys.is_some = true;
    ret->config_keys.val.ptr = keys;
    ret->config_keys.val.len = 2;
    ret->roles = WICKET_PLUGIN_DESCRIPTION_ROLES_AUTH;
}

void exports_filter_plan(filter_instance_plan_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->on_request = true;
    ret->on_response = false;
    ret->request_body = WICKET_PLUGIN_DESCRIPTION_BODY_USE_NONE;
    ret->response_body = WICKET_PLUGIN_DESCRIPTION_BODY_USE_NONE;
}
