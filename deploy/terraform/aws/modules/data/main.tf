# PostgreSQL (RDS) with a database and a role per context, Redis (ElastiCache), and every
# secret the processes read, in Secrets Manager:
#   <name>/<context>/database-url   postgres://<context>:…@<endpoint>/<context>?sslmode=require
#   <name>/jwt-private-key          the Ed25519 key identity signs access tokens with
#   <name>/metrics-token, <name>/bootstrap-admin-password, <name>/redis-url, <name>/smtp-url
#   <name>/gateway-client-secret    the gateway's service identity (decisions §40), and
#   <name>/service-clients          identity's list of service clients (the secret's SHA-256)
# The databases and roles are created by a one-off ECS task (`db_init_task_definition`) that
# runs deploy/postgres-init.sh with the master credentials RDS keeps in Secrets Manager.

variable "name" {
  type = string
}

variable "contexts" {
  type = list(string)
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

variable "kms_key_arn" {
  type = string
}

variable "instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "redis_node_type" {
  type    = string
  default = "cache.t4g.small"
}

variable "smtp_url" {
  type        = string
  sensitive   = true
  description = "smtp://… or smtps://user:pass@host for notifications."
}

variable "log_retention_days" {
  type    = number
  default = 365
}

resource "aws_security_group" "database" {
  name        = "${var.name}-database"
  description = "PostgreSQL and Redis, from inside the VPC only"
  vpc_id      = var.vpc_id
  ingress {
    description = "PostgreSQL from the services"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
  ingress {
    description = "Redis from the services"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
  egress {
    description = "Answers within the VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name   = "${var.name}-postgres15"
  family = "postgres15"
  # Slow statements and every connection are logged (to CloudWatch, below).
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier                          = var.name
  engine                              = "postgres"
  engine_version                      = "15"
  instance_class                      = var.instance_class
  allocated_storage                   = 50
  max_allocated_storage               = 500
  storage_encrypted                   = true
  kms_key_id                          = var.kms_key_arn
  username                            = "emporium_admin"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = var.kms_key_arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  parameter_group_name                = aws_db_parameter_group.this.name
  multi_az                            = true
  publicly_accessible                 = false
  backup_retention_period             = 14
  deletion_protection                 = true
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = var.kms_key_arn
  monitoring_interval                 = 30
  monitoring_role_arn                 = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-final"
}

resource "random_password" "context" {
  for_each = toset(var.contexts)
  length   = 40
  special  = false
}

resource "aws_secretsmanager_secret" "database_url" {
  for_each = toset(var.contexts)
  name     = "${var.name}/${each.key}/database-url"
  # checkov:skip=CKV2_AWS_57:A role's password changes with a coordinated release (new role password, then the URL); automatic rotation would break running tasks
  kms_key_id = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "database_url" {
  for_each      = toset(var.contexts)
  secret_id     = aws_secretsmanager_secret.database_url[each.key].id
  secret_string = "postgres://${each.key}:${random_password.context[each.key].result}@${aws_db_instance.this.address}:5432/${each.key}?sslmode=require"
}

resource "aws_secretsmanager_secret" "role_password" {
  for_each = toset(var.contexts)
  name     = "${var.name}/${each.key}/database-password"
  # checkov:skip=CKV2_AWS_57:Read once by the database initialisation task; changed with the URL above
  kms_key_id = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "role_password" {
  for_each      = toset(var.contexts)
  secret_id     = aws_secretsmanager_secret.role_password[each.key].id
  secret_string = random_password.context[each.key].result
}

# Access tokens are signed with this Ed25519 key (PKCS#8 PEM), the same in every identity task.
resource "tls_private_key" "signing" {
  algorithm = "ED25519"
}

resource "random_password" "metrics" {
  length  = 40
  special = false
}

resource "random_password" "admin" {
  length  = 32
  special = false
}

resource "random_password" "redis" {
  length  = 48
  special = false
}

resource "random_password" "gateway_client" {
  length  = 48
  special = false
}

locals {
  shared = {
    "jwt-private-key"          = tls_private_key.signing.private_key_pem
    "metrics-token"            = random_password.metrics.result
    "bootstrap-admin-password" = random_password.admin.result
    "redis-url"                = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
    "smtp-url"                 = var.smtp_url
    "gateway-client-secret"    = random_password.gateway_client.result
    "service-clients"          = "gateway:${sha256(random_password.gateway_client.result)}:${join("|", var.contexts)}"
  }
}

resource "aws_secretsmanager_secret" "shared" {
  for_each = toset(keys(local.shared))
  name     = "${var.name}/${each.key}"
  # checkov:skip=CKV2_AWS_57:Rotating the signing key or these tokens is a release step (a new key is published in the JWKS before it signs); not automatic
  kms_key_id = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "shared" {
  for_each      = toset(keys(local.shared))
  secret_id     = aws_secretsmanager_secret.shared[each.key].id
  secret_string = local.shared[each.key]
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_cloudwatch_log_group" "redis" {
  name              = "/${var.name}/redis"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id       = var.name
  description                = "Rate limits, log-in throttles and shared caches"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.database.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result
  kms_key_id                 = var.kms_key_arn
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }
}

output "database_url_secret_arns" {
  value = { for c in var.contexts : c => aws_secretsmanager_secret.database_url[c].arn }
}

output "role_password_secret_arns" {
  value = { for c in var.contexts : c => aws_secretsmanager_secret.role_password[c].arn }
}

output "shared_secret_arns" {
  value = { for k in keys(local.shared) : k => aws_secretsmanager_secret.shared[k].arn }
}

output "master_secret_arn" {
  value = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "database_address" {
  value = aws_db_instance.this.address
}

# The one-off task that creates each context's role and database (deploy/postgres-init.sh),
# run once after the first apply:
#   aws ecs run-task --cluster <cluster> --task-definition <name>-db-init --launch-type FARGATE \
#     --network-configuration 'awsvpcConfiguration={subnets=[<private subnet>],securityGroups=[<database security group>]}'
resource "aws_cloudwatch_log_group" "db_init" {
  name              = "/${var.name}/db-init"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "db_init" {
  name               = "${var.name}-db-init"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
}

resource "aws_iam_role_policy_attachment" "db_init" {
  role       = aws_iam_role.db_init.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "db_init" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat([aws_db_instance.this.master_user_secret[0].secret_arn], [for c in var.contexts : aws_secretsmanager_secret.role_password[c].arn])
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "db_init" {
  role   = aws_iam_role.db_init.id
  policy = data.aws_iam_policy_document.db_init.json
}

data "aws_region" "current" {}

resource "aws_ecs_task_definition" "db_init" {
  family                   = "${var.name}-db-init"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.db_init.arn
  container_definitions = jsonencode([{
    name                   = "db-init"
    image                  = "public.ecr.aws/docker/library/postgres:15"
    essential              = true
    readonlyRootFilesystem = true
    command                = ["sh", "-c", file("${path.module}/../../../../postgres-init.sh")]
    environment = [
      { name = "PGHOST", value = aws_db_instance.this.address },
      { name = "PGSSLMODE", value = "require" },
      { name = "POSTGRES_USER", value = "emporium_admin" },
      { name = "PGDATABASE", value = "postgres" },
    ]
    secrets = concat(
      [{ name = "PGPASSWORD", valueFrom = "${aws_db_instance.this.master_user_secret[0].secret_arn}:password::" }],
      [for c in var.contexts : { name = "${upper(c)}_DB_PASSWORD", valueFrom = aws_secretsmanager_secret.role_password[c].arn }],
    )
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.db_init.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "db-init"
      }
    }
  }])
}

output "security_group_id" {
  value = aws_security_group.database.id
}
