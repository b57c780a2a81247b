#!/bin/sh
# Writes the text of a core module that implements the trainbox plugin world
# by hand (no language runtime), with TABLES funcref tables of INITIAL
# elements each, every one grown by GROW elements at each step-begin.
# Usage: gen.sh NAME TABLES INITIAL GROW
set -eu
name=$1 tables=$2 initial=$3 grow=$4
le32() { printf '\\%02x\\%02x\\%02x\\%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
cat <<WAT
(module
  (memory (export "cm32p2_memory") 1)
  (global \$heap (mut i32) (i32.const 8192))
WAT
i=0; while [ $i -lt "$tables" ]; do echo "  (table \$t$i $initial funcref)"; i=$((i + 1)); done
# plugin-info: name, version, api-version (ptr, len each), events (ptr,
# len), stateful, capabilities (ptr, len); then the strings and the one event
# (step-begin = 5). 1200: an ok result; 1300: a control with no flag set;
# 1400: the string save-state returns.
printf '  (data (i32.const 1024) "%s%s%s%s%s%s%s%s\\00\\00\\00\\00%s%s")\n' \
  "$(le32 1100)" "$(le32 ${#name})" "$(le32 1116)" "$(le32 5)" "$(le32 1124)" "$(le32 5)" \
  "$(le32 1132)" "$(le32 1)" "$(le32 0)" "$(le32 0)"
printf '  (data (i32.const 1100) "%s")\n' "$name"
printf '  (data (i32.const 1116) "0.1.0")\n  (data (i32.const 1124) "0.1.0")\n  (data (i32.const 1132) "\\05")\n'
printf '  (data (i32.const 1400) "%s%s")\n' "$(le32 1500)" "$(le32 30)"
printf '  (data (i32.const 1500) "{\\"args\\": {}, \\"attributes\\": {}}")\n'
cat <<'WAT'
  (func (export "cm32p2|trainbox:callback/plugin@0.1|describe") (result i32)
    i32.const 1024)
  (func (export "cm32p2|trainbox:callback/plugin@0.1|configure") (param i32) (result i32)
    i32.const 1200)
  (func (export "cm32p2|trainbox:callback/plugin@0.1|on-event") (param i32) (result i32)
WAT
i=0; while [ $i -lt "$tables" ]; do
  echo "    (drop (table.grow \$t$i (ref.null func) (i32.const $grow)))"; i=$((i + 1)); done
cat <<'WAT'
    i32.const 1300)
  (func (export "cm32p2|trainbox:callback/plugin@0.1|save-state") (result i32)
    i32.const 1400)
  (func (export "cm32p2|trainbox:callback/plugin@0.1|load-state") (param i32 i32) (result i32)
    i32.const 1200)
  (func (export "cm32p2|trainbox:callback/plugin@0.1|finish") (param i32 i32 i32))
  (func (export "cm32p2_initialize"))
  ;; A bump allocator: what the host lowers into the plugin is never freed.
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (local.set $end (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end)
                (i32.mul (memory.size) (i32.const 65536))) (i32.const 65535)) (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    local.get $p)
)
WAT
