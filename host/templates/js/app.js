// {{name}}: a trainbox plugin in JavaScript. It prints the loss of every log
// entry; change it to do what you need. Enums are kebab-case strings, variants
// are {tag, val}, 64-bit integers arrive as BigInt; throw a string to fail.
export const plugin = {
  describe() {
    return {
      name: '{{name}}',
      version: '0.1.0',
      apiVersion: '0.2.0',
      events: ['log'], // the host calls no other event
      stateful: false,
      capabilities: [],
    };
  },

  configure(args, config) {},

  onEvent(event, state, control, payload) {
    for (const { key, value } of payload) {
      if (key === 'loss' && value.tag === 'float') {
        console.log(`step ${state.globalStep}: loss ${value.val.toFixed(4)}`);
      }
    }
    return control;
  },

  saveState() {
    return '{"args": {}, "attributes": {}}';
  },

  loadState(state) {},

  finish(outcome) {},
};
