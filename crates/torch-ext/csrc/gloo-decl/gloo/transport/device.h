// Declarations only: see the README.md of csrc/gloo-decl.
#pragma once
#include "../algorithm.h"
