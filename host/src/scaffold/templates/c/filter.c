/* {{name}}: a Wicket filter in C (world `wicket:plugin/{{world}}@0.1.0`).
 *
 * on-request: sets the context key `{{name}}.seen = "yes"`; a request with
 * `x-{{name}}-block: 1` is answered 403. on-response: sets the response header
 * `x-{{name}}` to the config key `greeting` (default "hello").
 *
 * The rules of wit-bindgen's C bindings (README.md): drop the borrows you receive before
 * returning, return heap copies, free what the host hands you. */
#include <stdlib.h>
#include <string.h>

#include "{{world}}.h"
#include "wicket_config.h"

/* The greeting, read from the config once per instance. */
static char *greeting;

/* A string argument pointing at `s` (borrowed for the call; never return one). */
static {{world}}_string_t arg(const char *s) {
    {{world}}_string_t out;
    {{world}}_string_set(&out, s);
    return out;
}

/* NULL when the config is usable, else why not. */
static const char *load_config(void) {
    if (greeting) return NULL;
    {{world}}_string_t json;
    wicket_plugin_config_get(&json);
    wicket_config config;
    const char *err = wicket_config_parse(json.ptr, json.len, &config);
    {{world}}_string_free(&json);
    static const char *const allowed[] = {"greeting", NULL};
    if (!err && wicket_config_unknown(&config, allowed)) err = "unknown config key (the key is `greeting`)";
    if (!err) {
        const char *g = wicket_config_get(&config, "greeting");
        greeting = strdup(g ? g : "hello");
    }
    wicket_config_free(&config);
    return err;
}

bool exports_wicket_plugin_hooks_check_config({{world}}_string_t *err) {
    const char *why = load_config();
    if (why) {
        {{world}}_string_dup(err, why);
        return false;
    }
    return true;
}

bool exports_wicket_plugin_hooks_on_request(exports_wicket_plugin_hooks_borrow_request_t req,
                                            exports_wicket_plugin_hooks_borrow_context_t ctx,
                                            exports_wicket_plugin_hooks_action_t *ret,
                                            exports_wicket_plugin_hooks_error_t *err) {
    bool ok = true;
    {{world}}_string_t name = arg("x-{{name}}-block"), value;
    if (wicket_plugin_types_method_request_header(req, &name, &value)) {
        ok = !(value.len == 1 && value.ptr[0] == '1');
        {{world}}_string_free(&value);
    }
    if (ok) {
        {{world}}_string_t key = arg("{{name}}.seen"), yes = arg("yes");
        wicket_plugin_types_method_context_set(ctx, &key, &yes);
        ret->tag = EXPORTS_WICKET_PLUGIN_HOOKS_ACTION_CONTINUE;
    } else {
        {{world}}_string_t path, line;
        wicket_plugin_types_method_request_path(req, &path);
        char *text = malloc(path.len + 16);
        memcpy(text, "blocked ", 8);
        memcpy(text + 8, path.ptr, path.len);
        text[8 + path.len] = 0;
        line = arg(text);
        wicket_plugin_log_log(WICKET_PLUGIN_LOG_LEVEL_INFO, &line);
        free(text);
        {{world}}_string_free(&path);
        err->status = 403;
        {{world}}_string_dup(&err->message, "blocked by {{name}}");
    }
    wicket_plugin_types_request_drop_borrow(req);
    wicket_plugin_types_context_drop_borrow(ctx);
    return ok;
}

bool exports_wicket_plugin_hooks_on_response(exports_wicket_plugin_hooks_borrow_request_t req,
                                             exports_wicket_plugin_hooks_borrow_response_t resp,
                                             exports_wicket_plugin_hooks_borrow_context_t ctx,
                                             exports_wicket_plugin_hooks_error_t *err) {
    bool ok = load_config() == NULL;
    if (ok) {
        {{world}}_string_t name = arg("x-{{name}}"), value = arg(greeting), why;
        if (!wicket_plugin_types_method_response_set_header(resp, &name, &value, &why)) {
            {{world}}_string_free(&why);
        }
    } else {
        err->status = 500;
        {{world}}_string_dup(&err->message, "Internal server error");
    }
    wicket_plugin_types_request_drop_borrow(req);
    wicket_plugin_types_response_drop_borrow(resp);
    wicket_plugin_types_context_drop_borrow(ctx);
    return ok;
}

void exports_{{world}}_describe({{world}}_description_t *ret) {
    {{world}}_string_dup(&ret->summary, "{{name}}: marks the context, greets every response");
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
    wicket_plugin_description_config_key_t *key = malloc(sizeof *key);
    if (!key) abort();
    {{world}}_string_dup(&key->name, "greeting");
    key->kind = WICKET_PLUGIN_DESCRIPTION_VALUE_KIND_STRING;
    key->required = false;
    {{world}}_string_dup(&key->doc, "value of the x-{{name}} response header");
    ret->config_keys.is_some = true;
    ret->config_keys.val.ptr = key;
    ret->config_keys.val.len = 1;
    ret->roles = 0;
}

void exports_{{world}}_plan({{world}}_instance_plan_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->on_request = true;
    ret->on_response = true;
    ret->request_body = WICKET_PLUGIN_DESCRIPTION_BODY_USE_NONE;
    ret->response_body = WICKET_PLUGIN_DESCRIPTION_BODY_USE_NONE;
}
