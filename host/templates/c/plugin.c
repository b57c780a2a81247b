// {{name}}: a trainbox plugin in C. It prints the loss of every log entry;
// change it to do what you need.
//
// Ownership (wit-bindgen's C bindings): arguments of exported functions are
// yours to free; returned strings and lists are freed by the bindings with
// free(), so build them with malloc (callback_string_dup).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callback.h"

void exports_trainbox_callback_plugin_describe(exports_trainbox_callback_plugin_plugin_info_t *ret) {
  callback_string_dup(&ret->name, "{{name}}");
  callback_string_dup(&ret->version, "0.1.0");
  callback_string_dup(&ret->api_version, "0.2.0");
  ret->events.len = 1;  // the host calls no other event
  ret->events.ptr = malloc(sizeof(trainbox_callback_types_event_t));
  ret->events.ptr[0] = TRAINBOX_CALLBACK_TYPES_EVENT_LOG;
  ret->stateful = false;
  ret->capabilities.len = 0;
  ret->capabilities.ptr = NULL;
}

bool exports_trainbox_callback_plugin_configure(exports_trainbox_callback_plugin_training_args_t *args,
                                                callback_list_tuple2_string_string_t *config,
                                                callback_string_t *err) {
  exports_trainbox_callback_plugin_training_args_free(args);
  callback_list_tuple2_string_string_free(config);
  return true;
}

void exports_trainbox_callback_plugin_on_event(exports_trainbox_callback_plugin_event_t event,
                                               exports_trainbox_callback_plugin_trainer_state_t *state,
                                               exports_trainbox_callback_plugin_trainer_control_t *control,
                                               exports_trainbox_callback_plugin_list_entry_t *payload,
                                               exports_trainbox_callback_plugin_trainer_control_t *ret) {
  *ret = *control;  // change nothing
  for (size_t i = 0; i < payload->len; i++) {
    trainbox_callback_types_entry_t *e = &payload->ptr[i];
    if (e->key.len == 4 && memcmp(e->key.ptr, "loss", 4) == 0 &&
        e->value.tag == TRAINBOX_CALLBACK_TYPES_VALUE_FLOAT) {
      char line[96];
      int n = snprintf(line, sizeof line, "step %llu: loss %.4f\n",
                       (unsigned long long)state->global_step, e->value.val.float_);
      (void)!write(STDOUT_FILENO, line, (size_t)n);
    }
  }
  exports_trainbox_callback_plugin_trainer_state_free(state);
  exports_trainbox_callback_plugin_list_entry_free(payload);
}

void exports_trainbox_callback_plugin_save_state(callback_string_t *ret) {
  callback_string_dup(ret, "{\"args\": {}, \"attributes\": {}}");
}

bool exports_trainbox_callback_plugin_load_state(callback_string_t *state, callback_string_t *err) {
  callback_string_free(state);
  return true;
}

void exports_trainbox_callback_plugin_finish(exports_trainbox_callback_plugin_run_outcome_t *outcome) {
  exports_trainbox_callback_plugin_run_outcome_free(outcome);
}
