# SPDX-License-Identifier: Apache-2.0
# find_package(shaudit): the client library as the imported target shaudit::shaudit.
include("${CMAKE_CURRENT_LIST_DIR}/shauditTargets.cmake")
