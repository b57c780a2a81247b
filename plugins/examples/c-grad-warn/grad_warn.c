// grad-warn: a trainbox plugin in C (wit-bindgen c + wasi-libc + the WASI
// preview1 reactor adapter). Subscribes to on_pre_optimizer_step, reads the
// total gradient norm through the `views` import (model() -> grad-norm) and
// prints a warning line when it exceeds the configured `threshold`
// (`--plugin_config grad-warn.threshold=VALUE`, default 10).
//
// Ownership rules of wit-bindgen's C bindings:
//  * arguments of exported functions belong to the callee: free them;
//  * returned strings/lists are freed by the generated post-return
//    functions with free(), so they must be malloc'd (callback_string_dup);
//  * results of imported functions belong to the caller; an `own` resource
//    handle must be dropped with *_drop_own.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callback.h"

static double threshold = 10.0;
static unsigned long warnings = 0;

// One write(2) per line: the host prints every flushed write as its own line,
// and stdio may split a line into several writes.
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  (void)!write(STDOUT_FILENO, buf, (size_t)n);
}

static int str_eq(const callback_string_t *s, const char *lit) {
  size_t n = strlen(lit);
  return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

static void set_err(callback_string_t *err, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  callback_string_dup(err, buf);  // malloc'd: freed by the post-return
}

void exports_trainbox_callback_plugin_describe(exports_trainbox_callback_plugin_plugin_info_t *ret) {
  callback_string_dup(&ret->name, "grad-warn");
  callback_string_dup(&ret->version, "0.1.0");
  callback_string_dup(&ret->api_version, "0.2.0");
  ret->events.len = 1;
  ret->events.ptr = malloc(sizeof(trainbox_callback_types_event_t));
  ret->events.ptr[0] = TRAINBOX_CALLBACK_TYPES_EVENT_PRE_OPTIMIZER_STEP;
  ret->stateful = false;
  ret->capabilities.len = 0;
  ret->capabilities.ptr = NULL;
}

bool exports_trainbox_callback_plugin_configure(exports_trainbox_callback_plugin_training_args_t *args,
                                                callback_list_tuple2_string_string_t *config,
                                                callback_string_t *err) {
  bool ok = true;
  for (size_t i = 0; ok && i < config->len; i++) {
    callback_tuple2_string_string_t *kv = &config->ptr[i];
    if (str_eq(&kv->f0, "threshold")) {
      char buf[64];
      size_t n = kv->f1.len < sizeof buf - 1 ? kv->f1.len : sizeof buf - 1;
      memcpy(buf, kv->f1.ptr, n);
      buf[n] = 0;
      char *end = NULL;
      errno = 0;
      double v = strtod(buf, &end);
      if (n == 0 || *end != 0 || errno != 0 || !(v >= 0)) {
        set_err(err, "threshold=%s: not a non-negative number", buf);
        ok = false;
      } else {
        threshold = v;
      }
    } else {
      set_err(err, "unknown key \"%.*s\"; known keys: threshold", (int)kv->f0.len, (const char *)kv->f0.ptr);
      ok = false;
    }
  }
  exports_trainbox_callback_plugin_training_args_free(args);
  callback_list_tuple2_string_string_free(config);
  return ok;
}

void exports_trainbox_callback_plugin_on_event(exports_trainbox_callback_plugin_event_t event,
                                               exports_trainbox_callback_plugin_trainer_state_t *state,
                                               exports_trainbox_callback_plugin_trainer_control_t *control,
                                               exports_trainbox_callback_plugin_list_entry_t *payload,
                                               exports_trainbox_callback_plugin_trainer_control_t *ret) {
  *ret = *control;  // change nothing
  if (event == TRAINBOX_CALLBACK_TYPES_EVENT_PRE_OPTIMIZER_STEP) {
    trainbox_callback_views_own_model_stats_t model = trainbox_callback_views_model();
    double norm;
    if (trainbox_callback_views_method_model_stats_grad_norm(trainbox_callback_views_borrow_model_stats(model), &norm)) {
      if (!isfinite(norm) || norm > threshold) {
        warnings++;
        // global_step counts finished updates: this is update global_step + 1.
        say("WARNING step %llu: gradient norm %.6g exceeds threshold %.6g",
            (unsigned long long)state->global_step + 1, norm, threshold);
      }
    }
    trainbox_callback_views_model_stats_drop_own(model);
  }
  exports_trainbox_callback_plugin_trainer_state_free(state);
  exports_trainbox_callback_plugin_list_entry_free(payload);
}

void exports_trainbox_callback_plugin_save_state(callback_string_t *ret) {
  callback_string_dup(ret, "{\"args\": {}, \"attributes\": {}}");
}

bool exports_trainbox_callback_plugin_load_state(callback_string_t *state, callback_string_t *err) {
  (void)err;
  callback_string_free(state);
  return true;
}

void exports_trainbox_callback_plugin_finish(exports_trainbox_callback_plugin_run_outcome_t *outcome) {
  if (warnings > 0)
    say("%lu update(s) had a gradient norm above %.6g", warnings, threshold);
  exports_trainbox_callback_plugin_run_outcome_free(outcome);
}
