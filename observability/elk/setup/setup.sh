#!/bin/sh
# One-shot ELK setup (docker-compose.yml: elk-setup), idempotent: the ILM policy and the
# index template, the logstash_writer role and user, the kibana_system password, then the
# Kibana objects (data view, saved searches, dashboard). Passwords come from .env.
set -eu
ES=http://elasticsearch:9200
KIBANA=http://kibana:5601
AUTH="elastic:${ELASTIC_PASSWORD}"
DIR=/elk

es() {  # es METHOD PATH [BODY_FILE]
  if [ $# -eq 3 ]; then
    curl -fsS -u "$AUTH" -X "$1" -H 'Content-Type: application/json' "$ES$2" --data-binary "@$3"
  else
    curl -fsS -u "$AUTH" -X "$1" "$ES$2"
  fi
  echo
}

until curl -fsS -u "$AUTH" "$ES/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null; do
  echo "waiting for elasticsearch"; sleep 2
done

es PUT /_ilm/policy/fixup-logs "$DIR/elasticsearch/ilm-policy.json"
es PUT /_index_template/fixup-logs "$DIR/elasticsearch/index-template.json"

cat > /tmp/role.json <<JSON
{"indices": [{"names": ["fixup-logs-*"], "privileges": ["create_index", "create_doc", "auto_configure"]}]}
JSON
es PUT /_security/role/fixup_logs_writer /tmp/role.json
cat > /tmp/user.json <<JSON
{"password": "${LOGSTASH_WRITER_PASSWORD}", "roles": ["fixup_logs_writer"]}
JSON
es PUT /_security/user/logstash_writer /tmp/user.json
cat > /tmp/kibana.json <<JSON
{"password": "${KIBANA_SYSTEM_PASSWORD}"}
JSON
es POST /_security/user/kibana_system/_password /tmp/kibana.json

until curl -fsS -u "$AUTH" "$KIBANA/api/status" | grep -q '"level":"available"'; do
  echo "waiting for kibana"; sleep 5
done
curl -fsS -u "$AUTH" -X POST -H 'kbn-xsrf: true' \
  "$KIBANA/api/saved_objects/_import?overwrite=true" \
  --form "file=@$DIR/kibana/objects.ndjson"
echo
echo "elk setup done"
