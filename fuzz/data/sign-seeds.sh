#!/usr/bin/env bash
# Writes the SNS messages signed with the fuzzing test key (fuzz-test-key.pem, whose
# self-signed certificate fuzz-test-cert.pem has CN sns.amazonaws.com) into
# fuzz/seeds/sns_verify/. They are the only inputs for which the sns_verify target lets
# Verifier::verify return Ok. Run again only if the key or these messages change; the
# target reads the result (it embeds those files), so rebuild it afterwards.
#
# The key is a throwaway generated for fuzzing; it signs nothing else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../seeds/sns_verify"
key="$here/fuzz-test-key.pem"
mkdir -p "$out"

topic="arn:aws:sns:us-east-1:123456789012:support-cases"
cert_url="https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f00dfacef00dfacef00dfacef00dface.pem"

# The string SNS signs, from a message's JSON (same key lists as src/sns/message.rs).
string_to_sign() {
    jq -j '
      def kv(k): if .[k] == null then "" else "\(k)\n\(.[k])\n" end;
      if .Type == "Notification" then
        kv("Message") + kv("MessageId") + kv("Subject") + kv("Timestamp") + kv("TopicArn") + kv("Type")
      else
        kv("Message") + kv("MessageId") + kv("SubscribeURL") + kv("Timestamp") + kv("Token")
          + kv("TopicArn") + kv("Type")
      end'
}

# sign NAME JSON: fills in Signature per SignatureVersion and writes NAME.json.
sign() {
    local name="$1" json="$2" digest sig
    if [[ "$(jq -r .SignatureVersion <<<"$json")" == "2" ]]; then digest=-sha256; else digest=-sha1; fi
    sig="$(string_to_sign <<<"$json" | openssl dgst "$digest" -sign "$key" | base64 -w0)"
    jq --arg sig "$sig" '.Signature = $sig' <<<"$json" >"$out/$name.json"
}

alarm='{"AlarmName":"fuzz-signed-alarm","AlarmDescription":"signed with the fuzz test key","NewStateValue":"ALARM","OldStateValue":"OK","StateChangeTime":"2026-11-20T03:12:45.118+0000","AlarmArn":"arn:aws:cloudwatch:us-east-1:123456789012:alarm:fuzz-signed-alarm","Trigger":{"MetricName":"CPUUtilization","Namespace":"AWS/EC2","Statistic":"AVERAGE","Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":90.0,"Dimensions":[{"name":"InstanceId","value":"i-0123456789abcdef0"}]}}'

sign signed-notification-v1-subject "$(jq -n --arg topic "$topic" --arg url "$cert_url" --arg msg "$alarm" '{
  Type: "Notification", MessageId: "0b6b7d4e-0000-4000-8000-00000000f001", TopicArn: $topic,
  Subject: "ALARM: \"fuzz-signed-alarm\" in US East (N. Virginia)", Message: $msg,
  Timestamp: "2026-11-20T03:12:45.201Z", SignatureVersion: "1", Signature: "",
  SigningCertURL: $url,
  UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=\($topic):1"}')"

sign signed-notification-v2-nosubject "$(jq -n --arg topic "$topic" --arg url "$cert_url" --arg msg "$alarm" '{
  Type: "Notification", MessageId: "0b6b7d4e-0000-4000-8000-00000000f002", TopicArn: $topic,
  Message: $msg, Timestamp: "2026-11-20T03:12:46.000Z", SignatureVersion: "2", Signature: "",
  SigningCertURL: $url,
  MessageAttributes: {k: {Type: "String", Value: "v"}}}')"

for kind in SubscriptionConfirmation UnsubscribeConfirmation; do
    sign "signed-$kind" "$(jq -n --arg topic "$topic" --arg url "$cert_url" --arg kind "$kind" '{
      Type: $kind, MessageId: "0b6b7d4e-0000-4000-8000-00000000f003", Token: "2336412f37fb687f",
      TopicArn: $topic,
      Message: "You have chosen to subscribe to the topic \($topic).\nTo confirm the subscription, visit the SubscribeURL included in this message.",
      SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=\($topic)&Token=2336412f37fb687f",
      Timestamp: "2026-11-20T03:12:47.000Z", SignatureVersion: (if $kind == "SubscriptionConfirmation" then "1" else "2" end),
      Signature: "", SigningCertURL: $url}')"
done

ls "$out"/signed-*.json
