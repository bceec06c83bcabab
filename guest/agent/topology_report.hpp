// What CPU topology the guest kernel sees, from sysfs, for the TOPOLOGY frame.
#pragma once

#include "guest/proto/messages.hpp"

#include <string>

namespace ktstr::agent {

// `sysfs` is "/sys" in the guest; tests point it at a fake tree.
proto::TopologyMsg read_topology(const std::string& sysfs = "/sys");

}  // namespace ktstr::agent
