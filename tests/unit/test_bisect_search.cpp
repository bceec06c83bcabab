// The flake-aware search against simulated verdicts.
#include "bisect/search.hpp"

#include <gtest/gtest.h>

using namespace ktstr::bisect;
