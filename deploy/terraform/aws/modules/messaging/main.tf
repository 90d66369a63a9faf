# SNS + SQS for EMPORIUM_BUS=sqs. The processes declare their own topology at start (the
# topic `<namespace>-events`, a queue `<namespace>-<group>` per consumer group with its filter
# policy and a redrive policy, the dead-letter queue `<namespace>-dead-letter`), because
# the groups and their event types come from the code. Terraform creates the topic and the
# dead-letter queue beforehand, encrypted with the deployment's key and with the retention an
# operator needs to look at what failed; the processes find them by name.

variable "namespace" {
  type        = string
  description = "EMPORIUM_SQS_NAMESPACE of every process."
}

variable "kms_key_arn" {
  type = string
}

resource "aws_sns_topic" "events" {
  name              = "${var.namespace}-events"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.namespace}-dead-letter"
  kms_master_key_id         = var.kms_key_arn
  message_retention_seconds = 1209600
}

output "topic_arn" {
  value = aws_sns_topic.events.arn
}

output "dead_letter_queue_arn" {
  value = aws_sqs_queue.dead_letter.arn
}
