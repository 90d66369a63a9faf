# One Emporium process as an ECS Fargate service: a context (or the monolith, or the
# gateway) with its task definition, roles, log group, security group, target group and
# listener rule, its Cloud Map name and an autoscaler. The task role may use SNS and SQS only
# on this deployment's resources (`<namespace>-*`), with the actions docs/operations.md lists.

variable "name" {
  type        = string
  description = "The deployment's name (prefix)."
}

variable "service" {
  type        = string
  description = "identity, catalog, …, gateway or monolith."
}

variable "args" {
  type    = list(string)
  default = ["serve"]
}

variable "image" {
  type = string
}

variable "cpu" {
  type    = number
  default = 256
}

variable "memory" {
  type    = number
  default = 512
}

variable "environment" {
  type        = map(string)
  description = "EMPORIUM_* settings."
}

variable "secrets" {
  type        = map(string)
  description = "Variable name => Secrets Manager secret ARN."
}

variable "path_patterns" {
  type        = list(string)
  description = "Paths the load balancer sends here (empty: not behind the load balancer)."
}

variable "rule_priority" {
  type = number
}

variable "cluster_arn" {
  type = string
}

variable "cluster_name" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "alb_security_group_id" {
  type = string
}

variable "listener_arn" {
  type = string
}

variable "namespace_id" {
  type = string
}

variable "kms_key_arn" {
  type = string
}

variable "sqs_namespace" {
  type = string
}

variable "min_count" {
  type    = number
  default = 2
}

variable "max_count" {
  type    = number
  default = 6
}

variable "log_retention_days" {
  type    = number
  default = 365
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  full     = "${var.name}-${var.service}"
  prefix   = "arn:aws:%s:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${var.sqs_namespace}-*"
  balanced = length(var.path_patterns) > 0
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/${var.name}/${var.service}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Starts the task: pulls the image, reads its secrets, writes its logs.
resource "aws_iam_role" "execution" {
  name               = "${local.full}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(var.secrets)
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "secrets" {
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.secrets.json
}

# What the process itself may do: the bus, nothing else.
resource "aws_iam_role" "task" {
  name               = "${local.full}-task"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "bus" {
  statement {
    actions = [
      "sns:CreateTopic", "sns:Publish", "sns:Subscribe", "sns:SetSubscriptionAttributes",
      "sns:GetTopicAttributes", "sns:Unsubscribe",
    ]
    resources = [format(local.prefix, "sns")]
  }
  statement {
    actions = [
      "sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
      "sqs:DeleteQueue",
    ]
    resources = [format(local.prefix, "sqs")]
  }
  statement {
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "bus" {
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.bus.json
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.full
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  volume {
    name = "data"
  }
  volume {
    name = "tmp"
  }
  container_definitions = jsonencode([{
    name                   = "emporium"
    image                  = var.image
    command                = var.args
    essential              = true
    user                   = "10001"
    readonlyRootFilesystem = true
    # Above EMPORIUM_SHUTDOWN_TIMEOUT_SECS (20): requests in flight finish.
    stopTimeout  = 30
    portMappings = [{ containerPort = 8080, protocol = "tcp" }, { containerPort = 9090, protocol = "tcp" }]
    environment  = [for k, v in var.environment : { name = k, value = v }]
    secrets      = [for k, v in var.secrets : { name = k, valueFrom = v }]
    mountPoints = [
      { sourceVolume = "data", containerPath = "/var/lib/emporium/data" },
      { sourceVolume = "tmp", containerPath = "/tmp" },
    ]
    healthCheck = {
      command     = ["CMD", "curl", "-fsS", "http://127.0.0.1:9090/health/live"]
      interval    = 10
      timeout     = 3
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = var.service
      }
    }
  }])
}

resource "aws_security_group" "this" {
  name        = local.full
  description = "${var.service}: the load balancer and the other services, nothing else"
  vpc_id      = var.vpc_id
  ingress {
    description     = "Requests and health checks from the load balancer"
    from_port       = 8080
    to_port         = 9090
    protocol        = "tcp"
    security_groups = [var.alb_security_group_id]
  }
  ingress {
    description = "The gateway, the token keys and Prometheus, from inside the VPC"
    from_port   = 8080
    to_port     = 9090
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
  egress {
    description = "PostgreSQL, Redis and the other services inside the VPC"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
  egress {
    description = "AWS APIs (SNS, SQS, Secrets Manager, ECR, logs) and SMTP, through the NAT"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "SMTP submission"
    from_port   = 465
    to_port     = 587
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_service_discovery_service" "this" {
  name = var.service
  dns_config {
    namespace_id = var.namespace_id
    dns_records {
      ttl  = 10
      type = "A"
    }
  }
  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_lb_target_group" "this" {
  # checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the tasks run in private subnets that only the load balancer and the VPC reach
  count       = local.balanced ? 1 : 0
  name        = substr(local.full, 0, 32)
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  # Lets requests in flight finish (the process's own grace is 20 s).
  deregistration_delay = 25
  health_check {
    path                = "/health/ready"
    port                = "9090"
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
    timeout             = 3
    matcher             = "200"
  }
}

resource "aws_lb_listener_rule" "this" {
  count        = local.balanced ? 1 : 0
  listener_arn = var.listener_arn
  priority     = var.rule_priority
  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }
  condition {
    path_pattern {
      values = var.path_patterns
    }
  }
}

resource "aws_ecs_service" "this" {
  name             = var.service
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.min_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # A new task is healthy before an old one stops; a failing rollout rolls itself back.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = local.balanced ? 60 : null
  propagate_tags                     = "SERVICE"
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = false
  }
  service_registries {
    registry_arn = aws_service_discovery_service.this.arn
  }
  dynamic "load_balancer" {
    for_each = aws_lb_target_group.this
    content {
      target_group_arn = load_balancer.value.arn
      container_name   = "emporium"
      container_port   = 8080
    }
  }
  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.full}-cpu"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  policy_type        = "TargetTrackingScaling"
  target_tracking_scaling_policy_configuration {
    target_value = 70
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

output "task_role_arn" {
  value = aws_iam_role.task.arn
}
