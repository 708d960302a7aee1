#!/usr/bin/env bash
# A private RabbitMQ node for one CI run: own temp dir, own node name, free ports on 127.0.0.1.
# Usage: source scripts/ci-broker.sh; ci_broker_start; ...; ci_broker_stop
# or, to do other work while it boots: ci_broker_launch; ...; ci_broker_await; ...; ci_broker_stop
RABBITMQ_BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

ci_broker_start() {
  ci_broker_launch && ci_broker_await
}

# Starts the node without waiting for it; exports its URLs (the ports are chosen here).
ci_broker_launch() {
  CI_BROKER_DIR=$(mktemp -d /tmp/warren-ci-rabbitmq.XXXXXX)
  local amqp_port dist_port http_port
  amqp_port=$(free_port); dist_port=$(free_port); http_port=$(free_port)
  CI_BROKER_NODE="warren-ci-$$@localhost"
  echo '[rabbitmq_management].' > "$CI_BROKER_DIR/enabled_plugins"
  cat > "$CI_BROKER_DIR/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$amqp_port
management.tcp.ip = 127.0.0.1
management.tcp.port = $http_port
log.console = false
log.file.level = warning
CONF
  export RABBITMQ_NODENAME="$CI_BROKER_NODE"
  export RABBITMQ_DIST_PORT="$dist_port"
  export RABBITMQ_MNESIA_BASE="$CI_BROKER_DIR/mnesia"
  export RABBITMQ_LOG_BASE="$CI_BROKER_DIR/log"
  export RABBITMQ_LOGS="$CI_BROKER_DIR/log/node.log"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$CI_BROKER_DIR/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$CI_BROKER_DIR/rabbitmq.conf"
  export RABBITMQ_CONF_ENV_FILE="$CI_BROKER_DIR/rabbitmq-env.conf"
  export RABBITMQ_PID_FILE="$CI_BROKER_DIR/rabbitmq.pid"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
  export RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
  export ERL_EPMD_ADDRESS=127.0.0.1
  mkdir -p "$CI_BROKER_DIR/log"
  setsid "$RABBITMQ_BIN/rabbitmq-server" > "$CI_BROKER_DIR/server.out" 2>&1 &
  CI_BROKER_PID=$!
  export RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$amqp_port"
  export RABBITMQ_MANAGEMENT_URL="http://guest:guest@127.0.0.1:$http_port"
}

# Waits until the launched node has booted; on failure prints its log tail and returns 1.
ci_broker_await() {
  # await_startup gives up at once while the node has not yet registered with epmd: retry it.
  local deadline=$((SECONDS + 120)) started=
  while [ $SECONDS -lt $deadline ] && kill -0 "$CI_BROKER_PID" 2> /dev/null; do
    if "$RABBITMQ_BIN/rabbitmqctl" -n "$CI_BROKER_NODE" await_startup --timeout 60 > /dev/null 2>&1; then
      started=1
      break
    fi
    sleep 1
  done
  if [ -z "$started" ]; then
    echo "RabbitMQ did not start; log tail:" >&2
    tail -n 30 "$CI_BROKER_DIR/log/node.log" "$CI_BROKER_DIR/server.out" >&2 || true
    return 1
  fi
  echo "RabbitMQ $CI_BROKER_NODE up at ${RABBITMQ_URL#*@} (management at ${RABBITMQ_MANAGEMENT_URL#*@})"
}

ci_broker_stop() {
  [ -n "${CI_BROKER_NODE:-}" ] || return 0
  "$RABBITMQ_BIN/rabbitmqctl" -n "$CI_BROKER_NODE" stop > /dev/null 2>&1 || kill -TERM -- "-$CI_BROKER_PID" 2> /dev/null || true
  wait "$CI_BROKER_PID" 2> /dev/null || true
  rm -rf "$CI_BROKER_DIR"
  CI_BROKER_NODE=
}
