w
last -n 3
cat /etc/shadow | head -n 1
crontab -l
exit
