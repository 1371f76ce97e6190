log_dir() {
    echo /var/log/$1
}
pgrepProgramName=mailq
startCmd=/opt/mailq/mailq
startCmdLogFile=$(log_dir mailq)/start.log
