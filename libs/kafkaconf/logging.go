package kafkaconf

// Log4j2Properties is the brokers' logging, for every broker cefiot starts
// (the local and test clusters, the Kafka image): everything to the
// console, which the node's log file or the container's log captures; INFO
// overall, WARN for the chattiest loggers.
const Log4j2Properties = `# cefiot's broker logging (libs/kafkaconf).
status = warn
name = cefiot

appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n

rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT

logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = WARN
`
