# Installation layout and the Debian packages (CPack DEB, one package per
# component): miroir-coordinator, miroir-worker, miroir-ctl, miroir-dev.
#   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr && ninja -C build
#   (cd build && cpack -G DEB)       # -> build/miroir-*_VERSION_ARCH.deb
# Runtime dependencies come from dpkg-shlibdeps; configs go to /etc/miroir
# (conffiles), units to /usr/lib/systemd/system. See docs/deploy.md.
include(GNUInstallDirs)

install(TARGETS miroir-coordinator RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT coordinator)
install(TARGETS miroir-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT worker)
install(TARGETS miroir-ctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ctl)

set(MIROIR_UNIT_DIR /usr/lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/etc/coordinator.yaml DESTINATION /etc/miroir
        COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/miroir-coordinator.service
        DESTINATION ${MIROIR_UNIT_DIR} COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/etc/worker.yaml DESTINATION /etc/miroir
        COMPONENT worker)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/miroir-worker.service
        DESTINATION ${MIROIR_UNIT_DIR} COMPONENT worker)

# Maintainer scripts and conffiles per service package.
set(MIROIR_DEB_DIR ${PROJECT_BINARY_DIR}/debian)
foreach(comp coordinator worker)
  set(PACKAGE miroir-${comp})
  set(UNIT miroir-${comp}.service)
  set(dir ${MIROIR_DEB_DIR}/${comp})
  foreach(script postinst prerm postrm)
    configure_file(${PROJECT_SOURCE_DIR}/deploy/debian/${script}.in ${dir}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                   GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  file(WRITE ${dir}/conffiles "/etc/miroir/${comp}.yaml\n")
  string(TOUPPER ${comp} COMP)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_EXTRA
      ${dir}/postinst ${dir}/prerm ${dir}/postrm ${dir}/conffiles)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endforeach()

set(CPACK_PACKAGE_NAME miroir)
set(CPACK_PACKAGE_VENDOR "miroir")
set(CPACK_PACKAGE_CONTACT "miroir maintainers <miroir@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sharded, replicated document store control plane")
set(CPACK_COMPONENTS_ALL coordinator worker ctl dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Strips the executables (not the static archives of miroir-dev).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME miroir-coordinator)
set(CPACK_DEBIAN_WORKER_PACKAGE_NAME miroir-worker)
set(CPACK_DEBIAN_CTL_PACKAGE_NAME miroir-ctl)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME miroir-dev)
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION
    "miroir coordinator: control plane of the miroir document store
 Routing tables, plans, shard moves and resharding; state in SQLite.")
set(CPACK_DEBIAN_WORKER_DESCRIPTION
    "miroir worker: data plane of the miroir document store
 Client writes and reads, routing, dual writes and leased tasks; stateless.")
set(CPACK_DEBIAN_CTL_DESCRIPTION "miroir-ctl: operator CLI of the miroir document store
 A gRPC client of miroir-coordinator.")
set(CPACK_DEBIAN_DEV_DESCRIPTION "miroir C++ client library (static) and its header
 miroir/client.h: sessions over a list of workers, per-key tokens, retries and
 failover. Build with `pkg-config --cflags --libs miroir-client`.")
# The static archives need the -dev packages of what they link (no shlibdeps for .a).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libgrpc++-dev, libprotobuf-dev, libabsl-dev")
# postinst uses useradd/groupadd (package passwd, priority required: always
# installed). Setting a component's Depends here would replace the shlibdeps list.
include(CPack)
