# bisectrun/'s pure parts: enum names, BisectMode (what --fixed inverts), the
# request checks, stored params, and the list/log/result text (no store, no VM).
ktstr_unit_test(test_bisect_driver SOURCES unit/test_bisect_driver.cpp LIBS ktstr_bisectrun)
